"""Each route's breaker (closed, open, half-open, quarantined), kept in the state store."""

from __future__ import annotations

import asyncio

from core.errors import StateUnavailable
from core.state.memory import MemoryStateStore
from proxy.routing.health import CircuitState, RouteHealth
from proxy.routing.route import Route
from proxy.settings import BreakerConfig
from tests.proxy.routing.scripted_backend import ScriptedBackend


def health(**config: float) -> tuple[RouteHealth, Route]:
    return RouteHealth(MemoryStateStore(), BreakerConfig(**config)), Route(ScriptedBackend("v", "r"))


async def test_a_fresh_route_is_closed_and_available() -> None:
    tracker, route = health()

    assert await tracker.unavailable_reason(route) is None
    status = await tracker.status(route)
    assert (status.state, status.since, status.back_in) == (CircuitState.CLOSED, None, None)


async def test_the_circuit_opens_at_the_threshold_and_not_before() -> None:
    tracker, route = health(failure_threshold=3)

    for _ in range(2):
        await tracker.record_failure(route, "timeout")
    assert await tracker.unavailable_reason(route) is None

    await tracker.record_failure(route, "timeout")
    assert await tracker.unavailable_reason(route) == "circuit open (3 consecutive failures, last: timeout)"
    status = await tracker.status(route)
    assert status.state is CircuitState.OPEN and status.since is not None
    assert status.back_in is not None and 0 < status.back_in <= 30


async def test_a_success_resets_the_count_of_consecutive_failures() -> None:
    tracker, route = health(failure_threshold=2)

    await tracker.record_failure(route)
    await tracker.record_success(route)
    await tracker.record_failure(route)

    assert await tracker.unavailable_reason(route) is None


async def test_an_open_circuit_lets_the_route_back_after_open_s() -> None:
    tracker, route = health(failure_threshold=1, open_s=0.05)

    await tracker.record_failure(route)
    assert (await tracker.status(route)).state is CircuitState.OPEN
    await asyncio.sleep(0.06)

    assert await tracker.unavailable_reason(route) is None


async def test_quarantine_takes_the_route_out_for_quarantine_s() -> None:
    tracker, route = health(quarantine_s=0.05)

    await tracker.quarantine(route, "402 insufficient credit")
    assert await tracker.unavailable_reason(route) == "quarantined (402 insufficient credit)"
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

    assert (await RouteHealth(store, config).status(Route(ScriptedBackend("v", "r")))).state is CircuitState.OPEN


async def test_a_passing_probe_brings_an_open_route_back_half_open_with_limited_trials() -> None:
    tracker, route = health(failure_threshold=1, half_open_trials=2)
    await tracker.record_failure(route)
    assert await tracker.admit(route) is None

    await tracker.probe_passed(route)

    status = await tracker.status(route)
    assert status.state is CircuitState.HALF_OPEN and status.serving
    assert await tracker.admit(route) is not None
    assert await tracker.admit(route) is not None
    assert await tracker.admit(route) is None  # the third trial waits for a verdict


async def test_a_passing_probe_lifts_a_quarantine_to_half_open() -> None:
    tracker, route = health()
    await tracker.quarantine(route, "401")

    await tracker.probe_passed(route)

    assert (await tracker.status(route)).state is CircuitState.HALF_OPEN


async def test_a_passing_probe_leaves_a_closed_route_closed() -> None:
    tracker, route = health()

    await tracker.probe_passed(route)

    assert (await tracker.status(route)).state is CircuitState.CLOSED


async def test_a_half_open_success_closes_the_route() -> None:
    tracker, route = health(failure_threshold=1)
    await tracker.record_failure(route)
    await tracker.probe_passed(route)

    admitted = await tracker.admit(route)
    assert admitted is not None
    await tracker.record_success(route, admitted)

    assert (await tracker.status(route)).state is CircuitState.CLOSED


async def test_a_half_open_failure_reopens_at_once_whatever_the_threshold() -> None:
    tracker, route = health(failure_threshold=5)
    await tracker.quarantine(route, "401")
    await tracker.probe_passed(route)

    admitted = await tracker.admit(route)
    assert admitted is not None
    await tracker.record_failure(route, "timeout", admitted)

    assert (await tracker.status(route)).state is CircuitState.OPEN


async def test_a_failed_probe_opens_a_closed_route_but_leaves_a_quarantine_alone() -> None:
    tracker, route = health()
    other = Route(ScriptedBackend("v", "other"))
    await tracker.quarantine(other, "402")

    await tracker.probe_failed(route, "connection refused")
    await tracker.probe_failed(other, "connection refused")

    assert await tracker.unavailable_reason(route) == "circuit open (probe failed: connection refused)"
    assert await tracker.unavailable_reason(other) == "quarantined (402)"


async def test_an_unreadable_state_record_counts_as_closed() -> None:
    tracker, route = health()
    await tracker.store.set(f"health:{route.key}:state", b"not json")

    assert (await tracker.status(route)).state is CircuitState.CLOSED


async def test_a_key_checking_probe_on_one_region_lifts_its_accounts_quarantine() -> None:
    tracker = RouteHealth(MemoryStateStore(), BreakerConfig())
    east = Route(ScriptedBackend("v", "east"), account="acct")
    west = Route(ScriptedBackend("v", "west"), account="acct")
    await tracker.quarantine(east, "401 bad key")

    await tracker.probe_passed(west, verifies_key=False)  # a HEAD says nothing about our key
    still = await tracker.status(east)
    await tracker.probe_passed(west, verifies_key=True)

    assert still.state is CircuitState.QUARANTINED and still.reason == "401 bad key"
    assert (await tracker.status(west)).state is CircuitState.HALF_OPEN
    assert (await tracker.status(east)).state is CircuitState.CLOSED


class AwayStore(MemoryStateStore):
    """A state store that has stopped answering (Redis down): every call is ``StateUnavailable``."""

    async def get(self, key: str) -> bytes | None:
        raise StateUnavailable("Redis did not answer")

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        raise StateUnavailable("Redis did not answer")

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        raise StateUnavailable("Redis did not answer")

    async def delete(self, key: str) -> None:
        raise StateUnavailable("Redis did not answer")


async def test_breakers_degrade_to_closed_while_the_state_store_is_away() -> None:
    tracker = RouteHealth(AwayStore(), BreakerConfig(failure_threshold=1))
    route = Route(ScriptedBackend("v", "r"))

    await tracker.record_failure(route, "500")
    await tracker.quarantine(route, "401")
    await tracker.probe_failed(route, "cannot connect")
    await tracker.record_success(route)

    assert (await tracker.status(route)).state is CircuitState.CLOSED
    assert await tracker.admit(route) is not None
    assert await tracker.unavailable_reason(route) is None


async def test_a_trial_given_back_lets_the_next_request_through_and_a_closed_route_gives_none() -> None:
    tracker, route = health(failure_threshold=1, half_open_trials=1)
    await tracker.record_failure(route)
    await tracker.probe_passed(route)

    taken = await tracker.admit(route)
    assert taken is not None and await tracker.admit(route) is None
    await tracker.release_trial(route, taken)
    again = await tracker.admit(route)
    assert again is not None and await tracker.admit(route) is None

    await tracker.record_success(route, again)  # closed now: a closed route's status holds no trial
    closed = await tracker.admit(route)
    assert closed is not None and closed.state is CircuitState.CLOSED
    before = await tracker.store.get("health:v:r:trials")
    await tracker.release_trial(route, closed)
    assert await tracker.store.get("health:v:r:trials") == before  # nothing given back for a closed route
