"""Hedging: a route slower than its threshold gets company; the first success wins, the loser is
cancelled and booked as a loss."""

from __future__ import annotations

import asyncio

import pytest

from core.deadline import Deadline
from core.errors import VendorRejectedRequest, VendorUnavailable
from core.request import ImageRequest
from proxy.routing.route import Route
from proxy.routing.router import Router
from proxy.settings import HedgingConfig
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to, router_over

QUICK = HedgingConfig(enabled=True, after_s=0.05)


def request() -> ImageRequest:
    return ImageRequest.model_validate({"prompt": "a lighthouse", "seed": 1})


class Gate:
    """A hedge gate that allows (or not) and records what it was asked."""

    def __init__(self, allow: bool = True) -> None:
        self.allowing = allow
        self.asked: list[tuple[str, str]] = []

    async def allow(self, primary: Route, hedge: Route) -> bool:
        self.asked.append((primary.vendor, hedge.vendor))
        return self.allowing


def hedged_router(*backends: ScriptedBackend, hedging: HedgingConfig = QUICK) -> tuple[Router, list[str]]:
    losses: list[str] = []

    async def book(route: Route, _: ImageRequest) -> None:
        losses.append(route.vendor)

    router = router_over([route_to(backend, priority=index, max_attempts=1) for index, backend in enumerate(backends)])
    router.hedging, router.on_hedge_loss = hedging, book
    return router, losses


async def test_a_hanging_route_is_raced_by_the_next_and_the_loser_is_cancelled_and_booked() -> None:
    stuck, spare = ScriptedBackend.playing("stuck", "hang"), ScriptedBackend("spare")
    router, losses = hedged_router(stuck, spare)
    gate = Gate()

    routed = await router.generate(request(), Deadline(10), hedge=gate)

    assert routed.route.backend is spare
    assert routed.hedged_to is not None and routed.hedged_to.backend is spare
    assert gate.asked == [("stuck", "spare")]
    assert stuck.cancelled == 1
    assert losses == ["stuck"]
    assert [(a.backend, a.outcome) for a in routed.attempts] == [("spare", "ok"), ("stuck", "cancelled")]


async def test_the_first_route_still_wins_if_it_answers_first_and_the_hedge_is_the_loser() -> None:
    slowish, slower = ScriptedBackend.playing("slowish", 0.15), ScriptedBackend.playing("slower", 5.0)
    router, losses = hedged_router(slowish, slower)

    routed = await router.generate(request(), Deadline(10), hedge=Gate())

    assert routed.route.backend is slowish
    assert routed.hedged_to is not None and routed.hedged_to.backend is slower
    assert (slower.cancelled, losses) == (1, ["slower"])


async def test_a_route_answering_within_its_threshold_is_never_hedged() -> None:
    quick, spare = ScriptedBackend("quick"), ScriptedBackend("spare")
    router, losses = hedged_router(quick, spare)
    gate = Gate()

    routed = await router.generate(request(), Deadline(10), hedge=gate)

    assert routed.route.backend is quick and routed.hedged_to is None
    assert (gate.asked, spare.calls, losses) == ([], [], [])


async def test_a_gate_that_refuses_leaves_the_request_to_plain_failover() -> None:
    slow, spare = ScriptedBackend.playing("slow", 0.2), ScriptedBackend("spare")
    router, losses = hedged_router(slow, spare)
    gate = Gate(allow=False)

    routed = await router.generate(request(), Deadline(10), hedge=gate)

    assert routed.route.backend is slow and routed.hedged_to is None
    assert gate.asked == [("slow", "spare")]
    assert (spare.calls, losses) == ([], [])


async def test_when_both_racers_fail_the_request_fails_over_to_the_next_route() -> None:
    slow_failure = ScriptedBackend("slow-failure")
    second = ScriptedBackend.playing("second", VendorUnavailable("also down", status=502))
    third = ScriptedBackend("third")

    async def late_failure(request: ImageRequest, deadline: Deadline) -> object:
        await asyncio.sleep(0.1)
        raise VendorUnavailable("down late", status=503)

    slow_failure.generate = late_failure  # type: ignore[method-assign, assignment]
    router, losses = hedged_router(slow_failure, second, third)

    routed = await router.generate(request(), Deadline(10), hedge=Gate())

    assert routed.route.backend is third
    assert [(a.backend, a.outcome) for a in routed.attempts] == [
        ("second", "unavailable"), ("slow-failure", "unavailable"), ("third", "ok")]
    assert losses == []


async def test_a_rejected_request_cancels_the_other_racer_and_goes_back_to_the_client() -> None:
    stuck = ScriptedBackend.playing("stuck", "hang")
    picky = ScriptedBackend.playing("picky", VendorRejectedRequest("bad prompt", status=400))
    router, losses = hedged_router(stuck, picky)

    with pytest.raises(VendorRejectedRequest):
        await router.generate(request(), Deadline(10), hedge=Gate())

    assert stuck.cancelled == 1
    assert losses == []  # nobody won: nothing was raced away


async def test_a_client_gone_cancels_every_racer_without_booking_a_race_loss() -> None:
    stuck, also_stuck = ScriptedBackend.playing("stuck", "hang"), ScriptedBackend.playing("also", "hang")
    router, losses = hedged_router(stuck, also_stuck)
    serving = asyncio.create_task(router.generate(request(), Deadline(10), hedge=Gate()))
    while not also_stuck.calls:
        await asyncio.sleep(0.01)

    serving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await serving

    assert (stuck.cancelled, also_stuck.cancelled, losses) == (1, 1, [])


async def test_the_threshold_is_the_routes_p95_floored_or_the_fallback_before_any_record() -> None:
    router, _ = hedged_router(ScriptedBackend("a"), hedging=HedgingConfig(min_after_s=0.5, fallback_after_s=4))
    route = router.routes[0]
    router.board.refresh_s = 0

    before = await router.hedge_threshold(route)
    for _ in range(20):
        await router.stats.record(route, 2.2, ok=True)
    measured = await router.hedge_threshold(route)
    router.hedging = HedgingConfig(after_s=0.7)
    fixed = await router.hedge_threshold(route)

    assert before == 4
    assert 2.0 < measured <= 2.5
    assert fixed == 0.7
