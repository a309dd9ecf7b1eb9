"""How long the router waits: the vendor's Retry-After, backoff, and the one deadline.

Which waits the router took is read from ``Waits``, exactly; wall time is asserted only from
below (a loaded machine only adds to it), never as "it did not wait": that is ``Waits``'s.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from core.deadline import Deadline
from core.errors import NoBackendAvailable, VendorRateLimited, VendorTimeout, VendorUnavailable
from core.request import ImageRequest
from proxy.routing.router import Router
from proxy.settings import RetryConfig
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to, router_over

GENEROUS_S = 30.0
"""Not a measure of speed: only "the deadline cut it" rather than hanging the test run."""


class Waits(list[float]):
    """The waits between retries a router took, in seconds, each still waited for real."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)
        await asyncio.sleep(seconds)


def waits_of(router: Router) -> Waits:
    waits = Waits()
    router.attempts.sleep = waits
    return waits


def request(**fields: object) -> ImageRequest:
    return ImageRequest.model_validate({"prompt": "a lighthouse at dusk", "seed": 1, **fields})


def unavailable() -> VendorUnavailable:
    return VendorUnavailable("503 from the vendor", status=503)


async def test_retry_after_is_honoured_instead_of_the_backoff() -> None:
    limited = ScriptedBackend.playing("limited", VendorRateLimited("slow down", status=429, retry_after=0.3))
    slow_backoff = RetryConfig(backoff_initial_s=5, backoff_max_s=5, jitter_s=0)
    router = router_over([route_to(limited)], retry=slow_backoff)
    waits = waits_of(router)

    routed = await router.generate(request(), Deadline(10))

    assert routed.route.backend is limited
    assert waits == [0.3]  # the Retry-After, not the 5 s backoff
    assert limited.call_times[1] - limited.call_times[0] >= 0.3


async def test_the_backoff_between_retries_grows() -> None:
    flaky = ScriptedBackend.playing("flaky", unavailable(), unavailable())
    backoff = RetryConfig(backoff_initial_s=0.05, backoff_max_s=1, jitter_s=0)
    router = router_over([route_to(flaky)], retry=backoff)
    waits = waits_of(router)

    await router.generate(request(), Deadline(5))

    assert waits == pytest.approx([0.05, 0.10])
    assert len(flaky.calls) == 3


async def test_a_retry_after_above_the_longest_honoured_wait_fails_over_at_once() -> None:
    limited = ScriptedBackend.playing("limited", VendorRateLimited("slow down", status=429, retry_after=5))
    spare = ScriptedBackend("spare")
    retry = RetryConfig(backoff_initial_s=0, backoff_max_s=0, jitter_s=0, max_retry_after_s=1)
    router = router_over([route_to(limited, priority=1), route_to(spare, priority=2)], retry=retry)
    waits = waits_of(router)

    routed = await router.generate(request(), Deadline(30))

    assert waits == []
    assert routed.route.backend is spare
    assert len(limited.calls) == 1


async def test_a_retry_after_beyond_the_deadline_fails_over_at_once() -> None:
    limited = ScriptedBackend.playing("limited", VendorRateLimited("slow down", status=429, retry_after=3))
    spare = ScriptedBackend("spare")
    router = router_over([route_to(limited, priority=1), route_to(spare, priority=2)],
                         retry=RetryConfig(max_retry_after_s=30, backoff_initial_s=0, jitter_s=0))
    waits = waits_of(router)

    routed = await router.generate(request(), Deadline(2))

    assert waits == []
    assert routed.route.backend is spare
    assert len(limited.calls) == 1


async def test_a_hanging_backend_is_cut_at_the_deadline_and_no_route_follows() -> None:
    hanging = ScriptedBackend.playing("hanging", "hang")
    spare = ScriptedBackend("spare")
    router = router_over([route_to(hanging, priority=1), route_to(spare, priority=2)])

    started = time.monotonic()
    with pytest.raises(NoBackendAvailable) as raised:
        async with asyncio.timeout(GENEROUS_S):  # cut, not left hanging
            await router.generate(request(), Deadline(0.3))

    assert time.monotonic() - started >= 0.25  # waited for it until the deadline
    assert spare.calls == []
    assert [a.outcome for a in raised.value.attempts] == ["timeout"]
    assert raised.value.message.startswith("The request's deadline passed")
    assert "hanging/r1: timeout" in raised.value.message


async def test_the_deadline_stops_retries_on_a_failing_route() -> None:
    failing = ScriptedBackend.playing("failing", *(unavailable() for _ in range(10)))
    backoff = RetryConfig(backoff_initial_s=0.3, backoff_max_s=0.3, jitter_s=0)
    router = router_over([route_to(failing, max_attempts=10)], retry=backoff)
    waits = waits_of(router)

    with pytest.raises(NoBackendAvailable) as raised:
        await router.generate(request(), Deadline(0.5))

    # Tries at 0 and 0.3 s; a second wait would end at 0.6 s, past the deadline: not started.
    assert waits == [0.3]
    assert len(failing.calls) == 2
    assert len(raised.value.attempts) == len(failing.calls)


async def test_a_hanging_attempt_is_reported_as_a_vendor_timeout() -> None:
    hanging = ScriptedBackend.playing("hanging", "hang")
    router = router_over([route_to(hanging, max_attempts=1)])

    with pytest.raises(NoBackendAvailable) as raised:
        await router.generate(request(), Deadline(0.1))

    assert [a.outcome for a in raised.value.attempts] == [VendorTimeout.outcome]
    assert raised.value.attempts[0].seconds >= 0.05  # its time until the deadline cut it, not nothing


async def test_with_another_route_left_a_long_wait_fails_over_instead() -> None:
    busy = ScriptedBackend.playing("busy", VendorUnavailable("queue full", status=503, retry_after=1))
    spare = ScriptedBackend("spare")
    retry = RetryConfig(backoff_initial_s=0, backoff_max_s=0, jitter_s=0, max_wait_with_fallback_s=0.5)
    router = router_over([route_to(busy, priority=1), route_to(spare, priority=2)], retry=retry)
    waits = waits_of(router)

    routed = await router.generate(request(), Deadline(30))

    assert waits == []
    assert routed.route.backend is spare
    assert len(busy.calls) == 1


async def test_the_last_route_left_waits_out_the_same_retry_after() -> None:
    busy = ScriptedBackend.playing("busy", VendorUnavailable("queue full", status=503, retry_after=0.6))
    retry = RetryConfig(backoff_initial_s=0, backoff_max_s=0, jitter_s=0, max_wait_with_fallback_s=0.5)
    router = router_over([route_to(busy)], retry=retry)
    waits = waits_of(router)

    started = time.monotonic()
    routed = await router.generate(request(), Deadline(30))

    assert waits == [0.6]
    assert time.monotonic() - started >= 0.6
    assert routed.route.backend is busy
    assert len(busy.calls) == 2
