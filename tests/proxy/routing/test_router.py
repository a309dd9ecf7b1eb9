"""The router: which routes it tries, in which order, how often, and what it answers in the end."""

from __future__ import annotations

import asyncio

import pytest

from backends.base import Backend, BackendResult, Capabilities
from core.deadline import Deadline
from core.errors import (
    BackendError,
    ContentFiltered,
    ContentPolicyViolation,
    InsufficientCredits,
    NoBackendAvailable,
    UnsupportedRequest,
    UnusableOutput,
    VendorAuthError,
    VendorOutOfCredit,
    VendorProtocolError,
    VendorRateLimited,
    VendorRejectedRequest,
    VendorTimeout,
    VendorUnavailable,
)
from core.request import ImageRequest
from proxy.routing.route import Route
from proxy.settings import BreakerConfig
from tests.proxy.routing.scripted_backend import ScriptedBackend, images, route_to, router_over, solid_png


def request(**fields: object) -> ImageRequest:
    return ImageRequest.model_validate({"prompt": "a lighthouse at dusk", "seed": 1, **fields})


def unavailable() -> VendorUnavailable:
    return VendorUnavailable("503 from the vendor", status=503)


def test_the_scripted_double_is_a_backend() -> None:
    assert isinstance(ScriptedBackend("a"), Backend)


# --- order -----------------------------------------------------------------------------------


async def test_the_lowest_priority_number_is_tried_first() -> None:
    low, high = ScriptedBackend("low"), ScriptedBackend("high")
    router = router_over([route_to(high, priority=20), route_to(low, priority=10)])

    routed = await router.generate(request(), Deadline(5))

    assert routed.route.backend is low
    assert len(low.calls) == 1
    assert high.calls == []


async def test_a_failing_first_priority_fails_over_to_the_next_priority() -> None:
    first = ScriptedBackend.playing("first", unavailable())
    second = ScriptedBackend("second")
    router = router_over([route_to(first, priority=10, max_attempts=1), route_to(second, priority=20)])

    routed = await router.generate(request(), Deadline(5))

    assert routed.route.backend is second
    assert [(a.backend, a.outcome) for a in routed.attempts] == [("first", "unavailable"), ("second", "ok")]


async def test_the_served_result_carries_the_backend_images() -> None:
    router = router_over([route_to(ScriptedBackend("a"))])

    routed = await router.generate(request(n=3), Deadline(5))

    assert len(routed.result.images) == 3
    assert routed.backend_seconds >= 0


# --- capabilities ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("capabilities", "fields", "reason"),
    [
        (Capabilities(max_steps=8), {"steps": 20}, "steps 20 > 8"),
        (Capabilities(fixed_steps=frozenset({1, 2, 4, 8})), {"steps": 3}, "steps 3 not in [1, 2, 4, 8]"),
        (Capabilities(max_side=1024), {"width": 1536, "height": 1024}, "size 1536x1024 outside 256-1024"),
        (Capabilities(min_side=512), {"width": 256, "height": 512}, "size 256x512 outside 512-1536"),
        (Capabilities(max_n=1), {"n": 2}, "n 2 > 1"),
        (Capabilities(image_to_image=False), {"init_image": b"\x89PNG\r\n\x1a\n"}, "no image-to-image"),
    ],
)
async def test_a_route_that_cannot_serve_the_request_is_skipped_with_its_reason(
    capabilities: Capabilities, fields: dict[str, object], reason: str
) -> None:
    unable = ScriptedBackend.playing("unable", capabilities=capabilities)
    able = ScriptedBackend.playing("able", capabilities=Capabilities(image_to_image=True))
    router = router_over([route_to(unable, priority=1), route_to(able, priority=2)])

    routed = await router.generate(request(**fields), Deadline(5))
    assert routed.route.backend is able
    assert unable.calls == []

    alone = router_over([route_to(ScriptedBackend.playing("unable", capabilities=capabilities))])
    with pytest.raises(UnsupportedRequest) as raised:
        await alone.generate(request(**fields), Deadline(5))
    assert raised.value.reasons == [f"unable:r1: {reason}"]
    assert raised.value.status_code == 400
    assert reason in raised.value.message
    assert raised.value.code == "unsupported_request"


# --- retries and failover ----------------------------------------------------------------------


async def test_a_retryable_error_is_retried_on_the_same_route_before_failing_over() -> None:
    flaky = ScriptedBackend.playing("flaky", unavailable(), VendorTimeout("slow"), VendorProtocolError("garbled"))
    spare = ScriptedBackend("spare")
    router = router_over([route_to(flaky, priority=1, max_attempts=3), route_to(spare, priority=2)])

    routed = await router.generate(request(), Deadline(5))

    assert len(flaky.calls) == 3
    assert routed.route.backend is spare
    assert [a.outcome for a in routed.attempts] == ["unavailable", "timeout", "protocol_error", "ok"]


async def test_a_retry_that_succeeds_stays_on_the_route() -> None:
    flaky = ScriptedBackend.playing("flaky", unavailable())
    spare = ScriptedBackend("spare")
    router = router_over([route_to(flaky, priority=1), route_to(spare, priority=2)])

    routed = await router.generate(request(), Deadline(5))

    assert routed.route.backend is flaky
    assert len(flaky.calls) == 2
    assert spare.calls == []


async def test_a_vendor_refusing_a_request_we_accepted_fails_over_without_retry_or_quarantine() -> None:
    """``steps: 30`` passes our validation; one vendor's 400 means that vendor can't, not that the
    client is wrong."""
    rejecting = ScriptedBackend.playing("rejecting", VendorRejectedRequest("steps must be <= 20", status=400))
    spare = ScriptedBackend("spare")
    router = router_over([route_to(rejecting, priority=1), route_to(spare, priority=2)])

    routed = await router.generate(request(), Deadline(5))

    assert routed.route.backend is spare
    assert len(rejecting.calls) == 1
    assert (await router.candidates(request()))[1] == []  # not quarantined


async def test_the_client_hears_the_refusal_only_when_every_route_refused() -> None:
    first = ScriptedBackend.playing("first", VendorRejectedRequest("no", status=400))
    second = ScriptedBackend.playing("second", VendorRejectedRequest("invalid input", status=422))
    router = router_over([route_to(first, priority=1), route_to(second, priority=2)])

    with pytest.raises(VendorRejectedRequest) as raised:
        await router.generate(request(), Deadline(5))

    assert raised.value.status_code == 400 and raised.value.code == "upstream_rejected_request"
    assert len(first.calls) == 1 and len(second.calls) == 1


async def test_a_refusal_among_other_failures_is_no_backend_available() -> None:
    refusing = ScriptedBackend.playing("refusing", VendorRejectedRequest("no", status=400))
    down = ScriptedBackend.playing("down", unavailable())
    router = router_over([route_to(refusing, priority=1), route_to(down, priority=2, max_attempts=1)])

    with pytest.raises(NoBackendAvailable):
        await router.generate(request(), Deadline(5))


async def test_an_auth_error_fails_over_at_once_and_quarantines_the_route() -> None:
    refused = ScriptedBackend.playing("refused", VendorAuthError("bad key", status=401))
    spare = ScriptedBackend("spare")
    router = router_over([route_to(refused, priority=1), route_to(spare, priority=2)])

    first = await router.generate(request(), Deadline(5))
    assert first.route.backend is spare
    assert len(refused.calls) == 1

    ordered, skipped = await router.candidates(request())
    assert [route.backend for route in ordered] == [spare]
    assert skipped == ["refused:r1: quarantined (auth_error 401: bad key)"]

    second = await router.generate(request(), Deadline(5))
    assert second.route.backend is spare
    assert len(refused.calls) == 1


async def test_a_refused_key_quarantines_every_region_of_that_account() -> None:
    east = ScriptedBackend.playing("acct", VendorAuthError("bad key", status=401), region="east")
    west = ScriptedBackend("acct", region="west")
    spare = ScriptedBackend("spare")
    router = router_over([route_to(east, priority=1, account="a1"),
                          route_to(west, priority=1, account="a1", region_rank=1),
                          route_to(spare, priority=2)])

    assert (await router.generate(request(), Deadline(5))).route.backend is spare
    assert west.calls == []
    ordered, skipped = await router.candidates(request())
    assert [route.backend for route in ordered] == [spare]
    assert len(skipped) == 2


async def test_a_payment_refusal_quarantines_briefly_then_the_account_is_tried_again() -> None:
    broke = ScriptedBackend.playing("broke", VendorOutOfCredit("in-flight predictions exceed the balance", status=402))
    spare = ScriptedBackend("spare")
    router = router_over([route_to(broke, priority=1), route_to(spare, priority=2)],
                         breaker=BreakerConfig(quarantine_s=300, credit_quarantine_s=0.05))

    assert (await router.generate(request(), Deadline(5))).route.backend is spare
    assert (await router.candidates(request()))[1] == [
        "broke:r1: quarantined (out_of_credit 402: in-flight predictions exceed the balance)"]
    await asyncio.sleep(0.06)
    assert (await router.generate(request(), Deadline(5))).route.backend is broke


async def test_the_circuit_opens_after_the_failure_threshold_and_a_success_closes_it() -> None:
    shaky = ScriptedBackend.playing("shaky", unavailable(), unavailable())
    spare = ScriptedBackend("spare")
    breaker = BreakerConfig(failure_threshold=2, open_s=0.1)
    router = router_over([route_to(shaky, priority=1, max_attempts=1), route_to(spare, priority=2)],
                         breaker=breaker)

    for _ in range(2):
        assert (await router.generate(request(), Deadline(5))).route.backend is spare
    ordered, skipped = await router.candidates(request())
    assert [route.backend for route in ordered] == [spare]
    assert skipped == ["shaky:r1: circuit open (2 consecutive failures, last: unavailable: 503 from the vendor)"]
    assert (await router.generate(request(), Deadline(5))).route.backend is spare
    assert len(shaky.calls) == 2

    await asyncio.sleep(0.12)  # the circuit's open time runs out: one trial request
    assert (await router.generate(request(), Deadline(5))).route.backend is shaky

    shaky.script.append(unavailable())  # after the success, one failure no longer opens it
    assert (await router.generate(request(), Deadline(5))).route.backend is spare
    assert (await router.candidates(request()))[1] == []


async def test_after_the_open_time_one_more_failure_reopens_the_circuit_at_once() -> None:
    shaky = ScriptedBackend.playing("shaky", unavailable(), unavailable(), unavailable())
    breaker = BreakerConfig(failure_threshold=2, open_s=0.1)
    router = router_over([route_to(shaky, max_attempts=1), route_to(ScriptedBackend("spare"), priority=200)],
                         breaker=breaker)
    for _ in range(2):
        await router.generate(request(), Deadline(5))

    await asyncio.sleep(0.12)
    assert (await router.candidates(request()))[1] == []
    await router.generate(request(), Deadline(5))

    assert (await router.candidates(request()))[1] == [
        "shaky:r1: circuit open (3 consecutive failures, last: unavailable: 503 from the vendor)"]


async def test_rate_limits_do_not_count_towards_the_circuit() -> None:
    limited = ScriptedBackend.playing("limited", *(VendorRateLimited("slow down", status=429) for _ in range(4)))
    router = router_over([route_to(limited, max_attempts=1), route_to(ScriptedBackend("spare"), priority=200)],
                         breaker=BreakerConfig(failure_threshold=2))

    for _ in range(4):
        await router.generate(request(), Deadline(5))

    assert (await router.candidates(request()))[1] == []


async def test_when_every_route_fails_the_error_lists_every_attempt() -> None:
    a = ScriptedBackend.playing("a", unavailable(), unavailable())
    b = ScriptedBackend.playing("b", VendorAuthError("key revoked", status=401), region="eu")
    router = router_over([route_to(a, priority=1, max_attempts=2), route_to(b, priority=2)])

    with pytest.raises(NoBackendAvailable) as raised:
        await router.generate(request(), Deadline(5))

    message = raised.value.message
    assert message.startswith("Every route failed")
    assert message.count("a/r1: unavailable 503 (503 from the vendor)") == 2
    assert "b/eu: auth_error 401 (key revoked)" in message
    assert [(x.backend, x.region, x.outcome) for x in raised.value.attempts] == [
        ("a", "r1", "unavailable"), ("a", "r1", "unavailable"), ("b", "eu", "auth_error")]


# --- what a backend answers --------------------------------------------------------------------


async def test_fewer_images_than_asked_is_a_protocol_error_that_fails_over() -> None:
    short = ScriptedBackend.playing("short", images(1))
    spare = ScriptedBackend("spare")
    router = router_over([route_to(short, priority=1, max_attempts=1), route_to(spare, priority=2)])

    routed = await router.generate(request(n=2), Deadline(5))

    assert routed.route.backend is spare
    assert len(routed.result.images) == 2
    assert routed.attempts[0].outcome == "protocol_error"
    assert "answered 1 image(s) for n=2" in routed.attempts[0].detail


async def test_a_blank_image_is_content_filtered_and_fails_over() -> None:
    filtering = ScriptedBackend.playing("filtering", images(1, solid_png(256)))
    spare = ScriptedBackend("spare")
    router = router_over([route_to(filtering, priority=1), route_to(spare, priority=2)])

    routed = await router.generate(request(width=256, height=256), Deadline(5))

    assert routed.route.backend is spare
    assert len(filtering.calls) == 1  # a filtered image is not retried on the same route
    assert routed.attempts[0].outcome == ContentFiltered.outcome


async def test_a_blank_image_is_a_content_policy_violation_when_the_gateway_rejects() -> None:
    filtering = ScriptedBackend.playing("filtering", images(1, solid_png(256)))
    spare = ScriptedBackend("spare")
    router = router_over([route_to(filtering, priority=1), route_to(spare, priority=2)],
                         content_filter_action="reject")

    with pytest.raises(ContentPolicyViolation) as raised:
        await router.generate(request(width=256, height=256), Deadline(5))

    assert raised.value.status_code == 400
    assert raised.value.code == "content_policy_violation"
    assert spare.calls == []


async def test_a_vendor_content_filter_error_fails_over_too() -> None:
    filtering = ScriptedBackend.playing("filtering", ContentFiltered("nsfw", status=400))
    spare = ScriptedBackend("spare")
    router = router_over([route_to(filtering, priority=1), route_to(spare, priority=2)])

    assert (await router.generate(request(), Deadline(5))).route.backend is spare


async def test_no_route_at_all_is_no_backend_available() -> None:
    with pytest.raises(NoBackendAvailable) as raised:
        await router_over([]).generate(request(), Deadline(5))
    assert raised.value.message == "No route can serve this request"


async def test_a_result_with_no_images_for_n_one_is_a_protocol_error() -> None:
    empty = ScriptedBackend.playing("empty", BackendResult(images=[]))
    router = router_over([route_to(empty, max_attempts=1)])

    with pytest.raises(NoBackendAvailable) as raised:
        await router.generate(request(), Deadline(5))
    assert raised.value.attempts[0].outcome == "protocol_error"


# --- latency-aware policies ------------------------------------------------------------------


async def test_fastest_follows_latencies_recorded_by_another_replica() -> None:
    from core.state.memory import MemoryStateStore
    from proxy.routing.health import RouteHealth
    from proxy.routing.router import Router
    from tests.proxy.routing.scripted_backend import NO_BACKOFF

    store = MemoryStateStore()
    slow, quick = ScriptedBackend("slow"), ScriptedBackend("quick")
    routes = [route_to(slow, priority=1), route_to(quick, priority=2)]
    replica_a = Router(routes, RouteHealth(store, BreakerConfig()), NO_BACKOFF, policy="fastest")
    replica_b = Router(routes, RouteHealth(store, BreakerConfig()), NO_BACKOFF, policy="priority")

    before = (await replica_a.candidates(request()))[0]
    for _ in range(5):  # replica B served these; its attempts land in the shared stats
        await replica_b.stats.record(routes[0], 2.5, ok=True)
        await replica_b.stats.record(routes[1], 0.3, ok=True)
    replica_a.board.refresh_s = 0
    after = (await replica_a.candidates(request()))[0]

    assert [route.backend for route in before] == [slow, quick]  # nothing measured: priority order
    assert [route.backend for route in after] == [quick, slow]


async def test_a_request_may_ask_for_another_policy() -> None:
    from proxy.routing.choice import RoutingChoice

    slow, quick = ScriptedBackend("slow"), ScriptedBackend("quick")
    router = router_over([route_to(slow, priority=1), route_to(quick, priority=2)])
    for _ in range(3):
        await router.stats.record(router.routes[0], 3.0, ok=True)
        await router.stats.record(router.routes[1], 0.2, ok=True)

    default = (await router.candidates(request()))[0]
    fastest = (await router.candidates(request(), RoutingChoice("fastest")))[0]

    assert default[0].backend is slow and fastest[0].backend is quick


async def test_every_attempt_lands_in_the_route_stats() -> None:
    flaky = ScriptedBackend.playing("flaky", unavailable())
    router = router_over([route_to(flaky, max_attempts=2)])

    await router.generate(request(), Deadline(5))
    summary = await router.stats.summary(router.routes[0])

    assert (summary.successes, summary.errors) == (1, 1)


async def test_a_request_the_vendor_rejects_is_not_held_against_the_route() -> None:
    picky = ScriptedBackend.playing("picky", VendorRejectedRequest("bad prompt", status=400))
    router = router_over([route_to(picky)])

    with pytest.raises(VendorRejectedRequest):
        await router.generate(request(), Deadline(5))

    assert (await router.stats.summary(router.routes[0])).attempts == 0


# --- admission (the key's budget, checked per route) -------------------------------------------


async def test_a_route_the_admit_hook_refuses_is_skipped_with_its_reason() -> None:
    pricey, cheap = ScriptedBackend("pricey"), ScriptedBackend("cheap")
    router = router_over([route_to(pricey, priority=10), route_to(cheap, priority=20)])

    async def admit(route: Route) -> None:
        if route.backend is pricey:
            raise InsufficientCredits("this route needs 5.4 credits and 0.5 remain")

    routed = await router.generate(request(), Deadline(5), admit=admit)

    assert routed.route.backend is cheap
    assert pricey.calls == []
    assert [(a.backend, a.outcome, a.status) for a in routed.attempts] == [
        ("pricey", "insufficient_credits", 402), ("cheap", "ok", 200)]


async def test_when_every_route_is_refused_the_refusal_goes_back_to_the_client() -> None:
    first, second = ScriptedBackend("first"), ScriptedBackend("second")
    router = router_over([route_to(first, priority=10), route_to(second, priority=20)])

    async def admit(route: Route) -> None:
        raise InsufficientCredits(f"{route.vendor} is too expensive")

    with pytest.raises(InsufficientCredits, match="second is too expensive"):
        await router.generate(request(), Deadline(5), admit=admit)
    assert first.calls == second.calls == []


async def test_admission_is_asked_before_each_route_in_the_order_tried() -> None:
    first = ScriptedBackend.playing("first", unavailable())
    second = ScriptedBackend("second")
    router = router_over([route_to(first, priority=10, max_attempts=1), route_to(second, priority=20)])
    admitted: list[str] = []

    async def admit(route: Route) -> None:
        admitted.append(route.vendor)

    await router.generate(request(), Deadline(5), admit=admit)

    assert admitted == ["first", "second"]


# --- money -------------------------------------------------------------------------------------


class LossBook:
    def __init__(self) -> None:
        self.losses: list[tuple[str, BackendError]] = []

    async def __call__(self, route: Route, request: ImageRequest, error: BackendError) -> None:
        self.losses.append((route.vendor, error))


async def test_a_failure_the_vendor_billed_is_a_loss_and_is_never_retried_on_that_route() -> None:
    garbled = ScriptedBackend.playing("garbled", UnusableOutput("output of no known shape"))
    spare = ScriptedBackend("spare")
    book = LossBook()
    router = router_over([route_to(garbled, priority=1, max_attempts=3), route_to(spare, priority=2)], on_loss=book)

    routed = await router.generate(request(), Deadline(5))

    assert routed.route.backend is spare
    assert len(garbled.calls) == 1  # one billed job per route attempt, never a second
    assert [(vendor, type(error)) for vendor, error in book.losses] == [("garbled", UnusableOutput)]


async def test_an_unbilled_failure_is_no_loss() -> None:
    book = LossBook()
    router = router_over([route_to(ScriptedBackend.playing("a", unavailable()), priority=1, max_attempts=1),
                          route_to(ScriptedBackend("b"), priority=2)], on_loss=book)
    await router.generate(request(), Deadline(5))
    assert book.losses == []


class LeavesABilledJob(ScriptedBackend):
    """A job vendor whose job, once the request is cancelled, runs on and is billed."""

    async def generate(self, request: ImageRequest, deadline: Deadline) -> BackendResult:
        self.calls.append(request)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError as cancelled:
            left = UnusableOutput("job left running", billed=True)
            raise asyncio.CancelledError(*cancelled.args) from left
        raise AssertionError("unreachable")


async def test_a_client_hanging_up_on_a_billed_job_is_still_a_loss() -> None:
    book = LossBook()
    backend = LeavesABilledJob("jobs")
    router = router_over([route_to(backend)], on_loss=book)
    task = asyncio.create_task(router.generate(request(), Deadline(5)))
    while not backend.calls:
        await asyncio.sleep(0.001)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert [vendor for vendor, _ in book.losses] == ["jobs"]


async def test_a_billed_job_abandoned_at_the_deadline_is_a_loss_not_a_retry() -> None:
    book = LossBook()
    backend = LeavesABilledJob("jobs")
    router = router_over([route_to(backend, max_attempts=3)], on_loss=book)

    with pytest.raises(NoBackendAvailable) as raised:
        await router.generate(request(), Deadline(0.05))

    assert len(backend.calls) == 1
    assert [vendor for vendor, _ in book.losses] == ["jobs"]
    assert raised.value.attempts[0].outcome == "unusable_output"


async def test_a_blank_image_the_vendor_billed_is_a_loss() -> None:
    book = LossBook()
    filtering = ScriptedBackend.playing("filtering", images(1, solid_png(256)))
    router = router_over([route_to(filtering, priority=1), route_to(ScriptedBackend("spare"), priority=2)],
                         on_loss=book)

    await router.generate(request(width=256, height=256), Deadline(5))

    assert [(vendor, type(error)) for vendor, error in book.losses] == [("filtering", ContentFiltered)]
