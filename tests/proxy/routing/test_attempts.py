"""One route, tried: what its end tells the route's breaker, and what a cancelled try may have cost.

The breaker: a half-open route's trial ends
with every answer. A success closes the route, a failure of the route re-opens it, and an answer
that says nothing about the route's health (the vendor refused this request, was busy, or
filtered the image) gives the trial back, so the route is neither counted as failing nor left
with its trials taken. A try cancelled while its vendor call was under way (the client hung up,
its job was cancelled) is the gateway's possible loss, booked at the route's estimate: the vendor
may be making, and billing, an image nobody gets; the client pays nothing for it."""

from __future__ import annotations

import asyncio

import pytest

from core.deadline import Deadline
from core.errors import (
    AmbiguousCreate,
    BackendError,
    ContentFiltered,
    VendorRateLimited,
    VendorRejectedRequest,
    VendorUnavailable,
)
from core.request import ImageRequest
from proxy.routing.health import CircuitState
from proxy.routing.route import Route
from proxy.routing.router import Router
from proxy.settings import BreakerConfig, HedgingConfig
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to, router_over


def request() -> ImageRequest:
    return ImageRequest(prompt="a lighthouse at dusk", seed=1)


NOT_THE_ROUTES_FAULT = [
    pytest.param(lambda: VendorRejectedRequest("bad steps for us", status=400), id="400"),
    pytest.param(lambda: VendorRejectedRequest("conflict", status=409), id="409"),
    pytest.param(lambda: VendorRejectedRequest("unprocessable", status=422), id="422"),
    pytest.param(lambda: VendorRateLimited("slow down", status=429), id="429"),
    pytest.param(lambda: ContentFiltered("nsfw flag"), id="filtered"),
]


@pytest.mark.parametrize("answer", NOT_THE_ROUTES_FAULT)
async def test_a_half_open_trial_answered_with_the_requests_own_refusal_is_given_back(answer: object) -> None:
    refusals: list[BackendError] = [answer() for _ in range(3)]  # type: ignore[operator]
    recovering = ScriptedBackend.playing("recovering", *refusals)
    spare = ScriptedBackend("spare")
    router = router_over([route_to(recovering, priority=1, max_attempts=1), route_to(spare, priority=2)],
                         breaker=BreakerConfig(failure_threshold=1, half_open_trials=1))
    route = router.routes[0]
    await router.health.record_failure(route, "timeout")
    await router.health.probe_passed(route)  # half-open: one trial request at a time

    for _ in range(3):  # each trial reaches the vendor, is refused, and fails over
        routed = await router.generate(request(), Deadline(5))
        assert routed.route.backend is spare
        assert (await router.health.status(route)).state is CircuitState.HALF_OPEN  # not counted as a failure

    routed = await router.generate(request(), Deadline(5))  # the trial is free again: the next request takes it

    assert routed.route.backend is recovering and len(recovering.calls) == 4
    assert (await router.health.status(route)).state is CircuitState.CLOSED


async def test_a_half_open_trial_that_the_route_fails_reopens_it() -> None:
    recovering = ScriptedBackend.playing("recovering", VendorUnavailable("down", status=503))
    spare = ScriptedBackend("spare")
    router = router_over([route_to(recovering, priority=1, max_attempts=1), route_to(spare, priority=2)],
                         breaker=BreakerConfig(failure_threshold=5, half_open_trials=1))
    route = router.routes[0]
    await router.health.probe_failed(route, "timeout")  # open whatever the threshold
    await router.health.probe_passed(route)

    routed = await router.generate(request(), Deadline(5))

    assert routed.route.backend is spare
    assert (await router.health.status(route)).state is CircuitState.OPEN


# A request cancelled while its vendor call is under way (the client hung up, its job was
# cancelled): the vendor may be making, and billing, what nobody will get.


class LossBook:
    def __init__(self) -> None:
        self.losses: list[tuple[str, BackendError]] = []

    async def __call__(self, route: Route, request: ImageRequest, error: BackendError) -> None:
        self.losses.append((route.vendor, error))


async def cancelled_while_the_vendor_works(router: Router, working: ScriptedBackend, calls: int = 1) -> None:
    serving = asyncio.create_task(router.generate(request(), Deadline(10)))
    while len(working.calls) < calls:
        await asyncio.sleep(0.001)
    serving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await serving


async def test_a_request_cancelled_while_its_create_is_under_way_is_booked_as_a_possible_loss() -> None:
    book = LossBook()
    generating = ScriptedBackend.playing("generating", "hang")
    router = router_over([route_to(generating)], on_loss=book)

    await cancelled_while_the_vendor_works(router, generating)

    ((vendor, error),) = book.losses
    assert vendor == "generating" and isinstance(error, AmbiguousCreate) and error.billed
    assert error.vendor_cost_usd is None and error.run_seconds is None  # booked at the route's estimate


async def test_a_request_cancelled_during_a_retry_books_the_try_under_way_and_not_the_refused_one() -> None:
    book = LossBook()
    busy_then_hanging = ScriptedBackend.playing("busy", VendorRateLimited("slow down", status=429), "hang")
    router = router_over([route_to(busy_then_hanging, max_attempts=3)], on_loss=book)

    await cancelled_while_the_vendor_works(router, busy_then_hanging, calls=2)  # the 429 started nothing

    assert [vendor for vendor, _ in book.losses] == ["busy"]


async def test_a_request_cancelled_while_two_routes_race_books_each_racer_once() -> None:
    book = LossBook()
    first, second = ScriptedBackend.playing("first", "hang"), ScriptedBackend.playing("second", "hang")
    router = router_over([route_to(first, priority=1, max_attempts=1), route_to(second, priority=2)], on_loss=book)
    router.hedging = HedgingConfig(after_s=0.01)

    serving = asyncio.create_task(router.generate(request(), Deadline(10), hedge=AlwaysHedge()))
    while not second.calls:
        await asyncio.sleep(0.001)
    serving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await serving

    assert sorted(vendor for vendor, _ in book.losses) == ["first", "second"]


class AlwaysHedge:
    async def allow(self, primary: Route, hedge: Route) -> bool:
        return True
