"""How long the router waits: the vendor's Retry-After, backoff, and the one deadline."""

from __future__ import annotations

import time

import pytest

from core.deadline import Deadline
from core.errors import NoBackendAvailable, VendorRateLimited, VendorTimeout, VendorUnavailable
from core.request import ImageRequest
from proxy.settings import RetryConfig
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to, router_over


def request(**fields: object) -> ImageRequest:
    return ImageRequest.model_validate({"prompt": "a lighthouse at dusk", "seed": 1, **fields})


def unavailable() -> VendorUnavailable:
    return VendorUnavailable("503 from the vendor", status=503)


async def test_retry_after_is_honoured_instead_of_the_backoff() -> None:
    limited = ScriptedBackend.playing("limited", VendorRateLimited("slow down", status=429, retry_after=0.3))
    slow_backoff = RetryConfig(backoff_initial_s=5, backoff_max_s=5, jitter_s=0)
    router = router_over([route_to(limited)], retry=slow_backoff)

    started = time.monotonic()
    routed = await router.generate(request(), Deadline(10))
    elapsed = time.monotonic() - started

    assert routed.route.backend is limited
    assert limited.call_times[1] - limited.call_times[0] == pytest.approx(0.3, abs=0.1)
    assert 0.3 <= elapsed < 1.0


async def test_the_backoff_between_retries_grows() -> None:
    flaky = ScriptedBackend.playing("flaky", unavailable(), unavailable())
    backoff = RetryConfig(backoff_initial_s=0.05, backoff_max_s=1, jitter_s=0)
    router = router_over([route_to(flaky)], retry=backoff)

    await router.generate(request(), Deadline(5))

    first, second, third = flaky.call_times
    assert second - first == pytest.approx(0.05, abs=0.04)
    assert third - second == pytest.approx(0.10, abs=0.04)


async def test_a_retry_after_above_the_longest_honoured_wait_fails_over_at_once() -> None:
    limited = ScriptedBackend.playing("limited", VendorRateLimited("slow down", status=429, retry_after=5))
    spare = ScriptedBackend("spare")
    retry = RetryConfig(backoff_initial_s=0, backoff_max_s=0, jitter_s=0, max_retry_after_s=1)
    router = router_over([route_to(limited, priority=1), route_to(spare, priority=2)], retry=retry)

    started = time.monotonic()
    routed = await router.generate(request(), Deadline(30))

    assert time.monotonic() - started < 0.5
    assert routed.route.backend is spare
    assert len(limited.calls) == 1


async def test_a_retry_after_beyond_the_deadline_fails_over_at_once() -> None:
    limited = ScriptedBackend.playing("limited", VendorRateLimited("slow down", status=429, retry_after=3))
    spare = ScriptedBackend("spare")
    router = router_over([route_to(limited, priority=1), route_to(spare, priority=2)],
                         retry=RetryConfig(max_retry_after_s=30, backoff_initial_s=0, jitter_s=0))

    started = time.monotonic()
    routed = await router.generate(request(), Deadline(2))

    assert time.monotonic() - started < 0.5
    assert routed.route.backend is spare
    assert len(limited.calls) == 1


async def test_a_hanging_backend_is_cut_at_the_deadline_and_no_route_follows() -> None:
    hanging = ScriptedBackend.playing("hanging", "hang")
    spare = ScriptedBackend("spare")
    router = router_over([route_to(hanging, priority=1), route_to(spare, priority=2)])

    started = time.monotonic()
    with pytest.raises(NoBackendAvailable) as raised:
        await router.generate(request(), Deadline(0.3))
    elapsed = time.monotonic() - started

    assert 0.25 <= elapsed < 0.8
    assert spare.calls == []
    assert [a.outcome for a in raised.value.attempts] == ["timeout"]
    assert raised.value.message.startswith("The request's deadline passed")
    assert "hanging/r1: timeout" in raised.value.message


async def test_the_deadline_stops_retries_on_a_failing_route() -> None:
    failing = ScriptedBackend.playing("failing", *(unavailable() for _ in range(10)))
    backoff = RetryConfig(backoff_initial_s=0.3, backoff_max_s=0.3, jitter_s=0)
    router = router_over([route_to(failing, max_attempts=10)], retry=backoff)

    started = time.monotonic()
    with pytest.raises(NoBackendAvailable) as raised:
        await router.generate(request(), Deadline(0.5))

    # Tries at 0 and 0.3 s; a third wait would end at 0.6 s, past the deadline, so it is not
    # started (a router that started it would take at least 0.6 s: the margin is for a slow CI).
    assert time.monotonic() - started < 0.55
    assert len(failing.calls) == 2
    assert len(raised.value.attempts) == len(failing.calls)


async def test_a_hanging_attempt_is_reported_as_a_vendor_timeout() -> None:
    hanging = ScriptedBackend.playing("hanging", "hang")
    router = router_over([route_to(hanging, max_attempts=1)])

    with pytest.raises(NoBackendAvailable) as raised:
        await router.generate(request(), Deadline(0.1))

    assert [a.outcome for a in raised.value.attempts] == [VendorTimeout.outcome]
    assert raised.value.attempts[0].seconds == pytest.approx(0.1, abs=0.08)


async def test_with_another_route_left_a_long_wait_fails_over_instead() -> None:
    busy = ScriptedBackend.playing("busy", VendorUnavailable("queue full", status=503, retry_after=1))
    spare = ScriptedBackend("spare")
    retry = RetryConfig(backoff_initial_s=0, backoff_max_s=0, jitter_s=0, max_wait_with_fallback_s=0.5)
    router = router_over([route_to(busy, priority=1), route_to(spare, priority=2)], retry=retry)

    started = time.monotonic()
    routed = await router.generate(request(), Deadline(30))

    assert time.monotonic() - started < 0.5
    assert routed.route.backend is spare
    assert len(busy.calls) == 1


async def test_the_last_route_left_waits_out_the_same_retry_after() -> None:
    busy = ScriptedBackend.playing("busy", VendorUnavailable("queue full", status=503, retry_after=0.6))
    retry = RetryConfig(backoff_initial_s=0, backoff_max_s=0, jitter_s=0, max_wait_with_fallback_s=0.5)
    router = router_over([route_to(busy)], retry=retry)

    started = time.monotonic()
    routed = await router.generate(request(), Deadline(30))

    assert time.monotonic() - started >= 0.6
    assert routed.route.backend is busy
    assert len(busy.calls) == 2
