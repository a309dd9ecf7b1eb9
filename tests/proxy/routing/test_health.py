"""Circuit breaker and quarantine, per route, kept in the state store."""

from __future__ import annotations

import asyncio

from core.state.memory import MemoryStateStore
from proxy.routing.health import RouteHealth
from proxy.routing.route import Route
from proxy.settings import BreakerConfig
from tests.proxy.routing.scripted_backend import ScriptedBackend


def health(**config: float) -> tuple[RouteHealth, Route]:
    return RouteHealth(MemoryStateStore(), BreakerConfig(**config)), Route(ScriptedBackend("v", "r"))


async def test_a_fresh_route_is_available() -> None:
    tracker, route = health()

    assert await tracker.unavailable_reason(route) is None


async def test_the_circuit_opens_at_the_threshold_and_not_before() -> None:
    tracker, route = health(failure_threshold=3)

    for _ in range(2):
        await tracker.record_failure(route)
    assert await tracker.unavailable_reason(route) is None

    await tracker.record_failure(route)
    assert await tracker.unavailable_reason(route) == "circuit open"


async def test_a_success_resets_the_count_of_consecutive_failures() -> None:
    tracker, route = health(failure_threshold=2)

    await tracker.record_failure(route)
    await tracker.record_success(route)
    await tracker.record_failure(route)

    assert await tracker.unavailable_reason(route) is None


async def test_an_open_circuit_lets_the_route_back_after_open_s() -> None:
    tracker, route = health(failure_threshold=1, open_s=0.05)

    await tracker.record_failure(route)
    assert await tracker.unavailable_reason(route) == "circuit open"
    await asyncio.sleep(0.06)

    assert await tracker.unavailable_reason(route) is None


async def test_quarantine_takes_the_route_out_for_quarantine_s() -> None:
    tracker, route = health(quarantine_s=0.05)

    await tracker.quarantine(route)
    assert await tracker.unavailable_reason(route) == "quarantined after an auth/credit refusal"
    await asyncio.sleep(0.06)

    assert await tracker.unavailable_reason(route) is None


async def test_a_payment_refusal_quarantines_for_credit_quarantine_s_only() -> None:
    tracker, route = health(quarantine_s=300, credit_quarantine_s=0.05)

    await tracker.quarantine(route, brief=True)
    assert await tracker.unavailable_reason(route) is not None
    await asyncio.sleep(0.06)

    assert await tracker.unavailable_reason(route) is None


async def test_quarantine_covers_every_region_of_the_account() -> None:
    tracker = RouteHealth(MemoryStateStore(), BreakerConfig())
    east = Route(ScriptedBackend("v", "east"), account="acct")
    west = Route(ScriptedBackend("v", "west"), account="acct")
    other_account = Route(ScriptedBackend("v", "east"), account="other")

    await tracker.quarantine(east)

    assert await tracker.unavailable_reason(west) is not None
    assert await tracker.unavailable_reason(other_account) is None


async def test_routes_are_tracked_apart() -> None:
    tracker, route = health(failure_threshold=1)
    other = Route(ScriptedBackend("v", "other-region"))

    await tracker.record_failure(route)

    assert await tracker.unavailable_reason(other) is None


async def test_replicas_sharing_one_store_share_the_circuit() -> None:
    store = MemoryStateStore()
    config = BreakerConfig(failure_threshold=1)
    route = Route(ScriptedBackend("v", "r"))

    await RouteHealth(store, config).record_failure(route)

    assert await RouteHealth(store, config).unavailable_reason(Route(ScriptedBackend("v", "r"))) == "circuit open"
