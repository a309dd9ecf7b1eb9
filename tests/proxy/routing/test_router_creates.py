"""The router and the money a create may have cost: a create whose answer was lost is never sent
again to its vendor account, every retry of one request carries the same idempotency key, and a
half-open breaker's trial that no request used is given back."""

from __future__ import annotations

from collections import deque

import pytest

from core.create_key import current_create_key
from core.deadline import Deadline
from core.errors import AmbiguousCreate, BackendError, InsufficientCredits, NoBackendAvailable, VendorTimeout
from core.request import ImageRequest
from proxy.routing.health import CircuitState
from proxy.routing.route import Route
from proxy.settings import BreakerConfig
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to, router_over


def request() -> ImageRequest:
    return ImageRequest(prompt="a lighthouse at dusk", seed=1)


def lost_answer() -> AmbiguousCreate:
    return AmbiguousCreate("eachlabs: the create's answer was lost (timeout); it may be running")


class LossBook:
    def __init__(self) -> None:
        self.losses: list[tuple[str, BackendError]] = []

    async def __call__(self, route: Route, request: ImageRequest, error: BackendError) -> None:
        self.losses.append((route.key, error))


async def test_a_lost_create_answer_is_never_retried_and_fails_over_to_another_account() -> None:
    east = ScriptedBackend.playing("each", lost_answer(), region="east")
    west = ScriptedBackend("each", region="west")
    spare = ScriptedBackend("spare")
    book = LossBook()
    router = router_over([route_to(east, priority=1, account="a1", max_attempts=3),
                          route_to(west, priority=1, account="a1", region_rank=1),
                          route_to(spare, priority=2)], on_loss=book)

    routed = await router.generate(request(), Deadline(5))

    assert routed.route.backend is spare
    assert len(east.calls) == 1  # never a second create on the route
    assert west.calls == []  # nor on another region of the same account
    assert [(a.backend, a.region, a.outcome) for a in routed.attempts] == [
        ("each", "east", "ambiguous_create"), ("spare", "r1", "ok")]
    assert [(key, type(error)) for key, error in book.losses] == [("each:east", AmbiguousCreate)]


async def test_with_no_other_account_the_request_fails_rather_than_create_twice() -> None:
    only = ScriptedBackend.playing("each", lost_answer())
    router = router_over([route_to(only, max_attempts=3)])

    with pytest.raises(NoBackendAvailable, match="ambiguous_create"):
        await router.generate(request(), Deadline(5))
    assert len(only.calls) == 1


async def test_a_lost_create_answer_counts_against_the_breaker_like_the_timeout_it_was() -> None:
    shaky = ScriptedBackend.playing("shaky", lost_answer(), lost_answer())
    spare = ScriptedBackend("spare")
    router = router_over([route_to(shaky, priority=1), route_to(spare, priority=2)],
                         breaker=BreakerConfig(failure_threshold=2, open_s=30))

    for _ in range(2):
        assert (await router.generate(request(), Deadline(5))).route.backend is spare

    assert (await router.health.status(router.routes[0])).state is CircuitState.OPEN


async def test_every_retry_and_failover_of_one_request_carries_one_key_and_requests_differ() -> None:
    flaky = ScriptedBackend("flaky", script=deque([VendorTimeout("timed out"), VendorTimeout("timed out")]))
    spare = ScriptedBackend("spare")
    router = router_over([route_to(flaky, priority=1, max_attempts=2), route_to(spare, priority=2)])

    await router.generate(request(), Deadline(5))  # two timeouts on flaky, then spare
    await router.generate(request(), Deadline(5))  # flaky serves

    first, second = flaky.create_keys[0], flaky.create_keys[2]
    assert first is not None and second is not None and first != second
    assert flaky.create_keys == [first, first, second] and spare.create_keys == [first]
    assert current_create_key() is None  # nothing leaks out of the request


async def test_a_half_open_trial_refused_for_credit_is_given_back() -> None:
    recovering, spare = ScriptedBackend("recovering"), ScriptedBackend("spare")
    router = router_over([route_to(recovering, priority=1), route_to(spare, priority=2)],
                         breaker=BreakerConfig(failure_threshold=1, half_open_trials=1))
    route = router.routes[0]
    await router.health.record_failure(route, "timeout")
    await router.health.probe_passed(route)  # half-open: one trial request

    async def too_poor_for_recovering(candidate: Route) -> None:
        if candidate is route:
            raise InsufficientCredits("this route needs 5 credits and 1 remains")

    for _ in range(3):  # each refused request gives its trial back
        routed = await router.generate(request(), Deadline(5), admit=too_poor_for_recovering)
        assert routed.route.backend is spare

    routed = await router.generate(request(), Deadline(5))  # a client who can pay gets the trial
    assert routed.route.backend is recovering
    assert (await router.health.status(route)).state is CircuitState.CLOSED
