"""One route, tried, and what its end tells the route's breaker: a half-open route's trial ends
with every answer. A success closes the route, a failure of the route re-opens it, and an answer
that says nothing about the route's health (the vendor refused this request, was busy, or
filtered the image) gives the trial back, so the route is neither counted as failing nor left
with its trials taken."""

from __future__ import annotations

import pytest

from core.deadline import Deadline
from core.errors import BackendError, ContentFiltered, VendorRateLimited, VendorRejectedRequest, VendorUnavailable
from core.request import ImageRequest
from proxy.routing.health import CircuitState
from proxy.settings import BreakerConfig
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
