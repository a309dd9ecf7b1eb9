"""Hedging: a route slower than its threshold gets company; the first success wins, the loser is
cancelled and booked as a loss."""

from __future__ import annotations

import asyncio

import pytest

from backends.base import BackendResult
from core.deadline import Deadline
from core.errors import (
    BackendError,
    ContentFiltered,
    ContentPolicyViolation,
    JobAbandoned,
    VendorRejectedRequest,
    VendorUnavailable,
)
from core.request import ImageRequest
from proxy.routing.route import Route
from proxy.routing.router import Router
from proxy.settings import BreakerConfig, HedgingConfig
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


def hedged_router(*backends: ScriptedBackend, hedging: HedgingConfig = QUICK,
                  content_filter_action: str = "failover") -> tuple[Router, list[str]]:
    losses: list[str] = []

    async def book(route: Route, _: ImageRequest, said: BackendError | None) -> None:
        losses.append(route.vendor if said is None else f"{route.vendor}: {said.outcome}")

    router = router_over([route_to(backend, priority=index, max_attempts=1) for index, backend in enumerate(backends)],
                         content_filter_action=content_filter_action)
    router.hedging, router.attempts.on_hedge_loss = hedging, book
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


async def test_a_hedge_the_vendor_refuses_leaves_the_first_route_to_answer() -> None:
    slow = ScriptedBackend.playing("slow", 0.3)
    picky = ScriptedBackend.playing("picky", VendorRejectedRequest("bad prompt", status=400))
    router, losses = hedged_router(slow, picky)

    routed = await router.generate(request(), Deadline(10), hedge=Gate())

    assert routed.route.backend is slow
    assert [(a.backend, a.outcome) for a in routed.attempts] == [("picky", "rejected"), ("slow", "ok")]
    assert losses == []


async def test_when_both_racers_refuse_the_request_the_client_hears_the_refusal() -> None:
    late_picky = ScriptedBackend("late-picky")
    picky = ScriptedBackend.playing("picky", VendorRejectedRequest("bad prompt", status=400))

    async def late_refusal(request: ImageRequest, deadline: Deadline) -> object:
        await asyncio.sleep(0.2)
        raise VendorRejectedRequest("not this prompt", status=422)

    late_picky.generate = late_refusal  # type: ignore[method-assign, assignment]
    router, losses = hedged_router(late_picky, picky)

    with pytest.raises(VendorRejectedRequest, match="not this prompt"):
        await router.generate(request(), Deadline(10), hedge=Gate())
    assert losses == []


async def test_an_answer_that_must_reach_the_client_cancels_the_other_racer() -> None:
    stuck = ScriptedBackend.playing("stuck", "hang")
    filtered = ScriptedBackend.playing("filtered", ContentFiltered("blank image"))
    router, losses = hedged_router(stuck, filtered, content_filter_action="reject")

    with pytest.raises(ContentPolicyViolation):
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


def job_left_behind(name: str, *, billed: bool) -> ScriptedBackend:
    """A job vendor's backend that, cancelled, says what became of its job (as ``poll_job`` does):
    cancelled at the vendor for free, or left running and billed."""
    backend = ScriptedBackend(name)

    async def hang_then_abandon(request: ImageRequest, deadline: Deadline) -> object:
        backend.calls.append(request)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError as cancelled:
            backend.cancelled += 1
            abandoned = JobAbandoned(f"{name} job abandoned", billed=billed, run_seconds=2.0)
            raise asyncio.CancelledError(*cancelled.args) from abandoned
        raise AssertionError("unreachable")

    backend.generate = hang_then_abandon  # type: ignore[method-assign, assignment]
    return backend


async def test_a_loser_whose_job_runs_on_is_booked_once_at_the_vendors_word() -> None:
    running_on, spare = job_left_behind("runs-on", billed=True), ScriptedBackend("spare")
    router, losses = hedged_router(running_on, spare)

    routed = await router.generate(request(), Deadline(10), hedge=Gate())

    assert routed.route.backend is spare
    assert losses == ["runs-on: job_abandoned"]  # not a second, estimated booking beside it


async def test_a_loser_whose_job_the_vendor_cancelled_for_free_costs_nothing() -> None:
    cancelled_free, spare = job_left_behind("cancels", billed=False), ScriptedBackend("spare")
    router, losses = hedged_router(cancelled_free, spare)

    routed = await router.generate(request(), Deadline(10), hedge=Gate())

    assert routed.route.backend is spare and cancelled_free.cancelled == 1
    assert losses == []



class FailsSlowly(ScriptedBackend):
    """Answers nothing for 0.2 s (long enough to be hedged), then a 503."""

    async def generate(self, request: ImageRequest, deadline: Deadline) -> BackendResult:
        self.calls.append(request)
        await asyncio.sleep(0.2)
        raise VendorUnavailable("503 after a while", status=503)


async def test_a_half_open_trial_taken_for_a_hedge_the_gate_refused_is_given_back_for_the_failover() -> None:
    slow, recovering = FailsSlowly("slow"), ScriptedBackend("recovering")
    router = router_over([route_to(slow, priority=1, max_attempts=1), route_to(recovering, priority=2)],
                         breaker=BreakerConfig(failure_threshold=1, half_open_trials=1))
    router.hedging = QUICK
    await router.health.record_failure(router.routes[1], "timeout")
    await router.health.probe_passed(router.routes[1])  # half-open: one trial request
    gate = Gate(allow=False)

    routed = await router.generate(request(), Deadline(10), hedge=gate)

    assert gate.asked == [("slow", "recovering")]  # the hedge was refused: its trial given back...
    assert routed.route.backend is recovering  # ...and taken by the failover
