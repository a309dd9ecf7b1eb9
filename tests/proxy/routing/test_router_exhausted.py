"""When no route serves: 429 when every route tried was rate-limited, else 503; both say when to
come back (the soonest a vendor or a breaker says a route is back)."""

from __future__ import annotations

import pytest

from core.deadline import Deadline
from core.errors import NoBackendAvailable, UpstreamRateLimited, VendorAuthError, VendorRateLimited, VendorUnavailable
from core.request import ImageRequest
from proxy.settings import BreakerConfig, RetryConfig
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to, router_over

NO_WAIT = RetryConfig(backoff_initial_s=0, backoff_max_s=0, jitter_s=0, max_retry_after_s=0,
                      unavailable_retry_after_s=2)
"""No Retry-After is waited out here: every one fails over at once."""


def request() -> ImageRequest:
    return ImageRequest.model_validate({"prompt": "a lighthouse", "seed": 1})


def limited(retry_after: float | None) -> VendorRateLimited:
    return VendorRateLimited("slow down", status=429, retry_after=retry_after)


async def test_every_route_rate_limited_is_a_429_with_the_smallest_retry_after() -> None:
    router = router_over([route_to(ScriptedBackend.playing("a", limited(7)), priority=1, max_attempts=1),
                          route_to(ScriptedBackend.playing("b", limited(3)), priority=2, max_attempts=1),
                          route_to(ScriptedBackend.playing("c", limited(None)), priority=3, max_attempts=1)],
                         retry=NO_WAIT)

    with pytest.raises(UpstreamRateLimited) as raised:
        await router.generate(request(), Deadline(5))

    assert raised.value.status_code == 429
    assert 2.9 < raised.value.retry_after <= 3
    assert raised.value.headers["retry-after"] == "3"
    assert [a.outcome for a in raised.value.attempts] == ["rate_limited"] * 3


async def test_rate_limited_routes_that_sent_no_retry_after_get_the_default_wait() -> None:
    router = router_over([route_to(ScriptedBackend.playing("a", limited(None)), max_attempts=1)], retry=NO_WAIT)

    with pytest.raises(UpstreamRateLimited) as raised:
        await router.generate(request(), Deadline(5))

    assert raised.value.retry_after == 2


async def test_one_route_failing_otherwise_makes_it_a_503_with_the_vendors_retry_after() -> None:
    router = router_over([route_to(ScriptedBackend.playing("a", limited(4)), priority=1, max_attempts=1),
                          route_to(ScriptedBackend.playing("b", VendorUnavailable("down", status=503)), priority=2,
                                   max_attempts=1)], retry=NO_WAIT)

    with pytest.raises(NoBackendAvailable) as raised:
        await router.generate(request(), Deadline(5))

    assert 3.9 < raised.value.retry_after <= 4
    assert raised.value.headers["retry-after"] == "4"


async def test_a_503_with_routes_held_out_says_when_the_first_comes_back() -> None:
    refused = ScriptedBackend.playing("refused", VendorAuthError("bad key", status=401))
    shaky = ScriptedBackend.playing("shaky", VendorUnavailable("down", status=503))
    router = router_over([route_to(refused, priority=1, max_attempts=1), route_to(shaky, priority=2, max_attempts=1)],
                         retry=NO_WAIT, breaker=BreakerConfig(failure_threshold=1, open_s=9, quarantine_s=300))
    with pytest.raises(NoBackendAvailable):
        await router.generate(request(), Deadline(5))

    with pytest.raises(NoBackendAvailable) as raised:  # both routes held out now
        await router.generate(request(), Deadline(5))

    assert raised.value.message.startswith("No route can serve this request")
    assert 8 < raised.value.retry_after <= 9  # the open circuit, not the quarantine


async def test_a_503_with_nothing_said_by_anyone_advertises_the_default_wait() -> None:
    router = router_over([route_to(ScriptedBackend.playing("a", VendorUnavailable("down", status=500)),
                                   max_attempts=1)], retry=NO_WAIT)

    with pytest.raises(NoBackendAvailable) as raised:
        await router.generate(request(), Deadline(5))

    assert raised.value.retry_after == 2
    assert raised.value.headers["retry-after"] == "2"
