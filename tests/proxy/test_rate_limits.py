"""Per-key rate limits: requests and images per minute, concurrency, and what the answers say."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from core.errors import InvalidRequest, KeyRateLimited
from core.state.memory import MemoryStateStore
from pricing.config import KeyLimits
from pricing.keys import KeyRecord
from proxy.rate_limits import KeyRateLimiter


def key(key_id: str = "k1", limits: KeyLimits | None = None) -> KeyRecord:
    return KeyRecord(key_id, key_id, None, datetime(2026, 1, 1, tzinfo=UTC), limits=limits)


def limiter(window_s: float = 60.0, **default: int) -> KeyRateLimiter:
    return KeyRateLimiter(MemoryStateStore(), KeyLimits(**default), lease_ttl_s=30, window_s=window_s)


async def test_without_limits_nothing_is_counted_and_no_header_is_sent() -> None:
    gate = limiter()

    admission = await gate.admit(key(), 4)

    assert admission.headers == {}
    assert await gate.store.get("ratelimit:k1:requests") is None


async def test_the_request_after_the_limit_is_a_429_with_headers_and_retry_after() -> None:
    gate = limiter(requests_per_minute=3)
    for remaining in (2, 1, 0):
        admitted = await gate.admit(key(), 1)
        assert admitted.headers["x-ratelimit-remaining-requests"] == str(remaining)

    with pytest.raises(KeyRateLimited) as raised:
        await gate.admit(key(), 1)

    headers = raised.value.headers
    assert raised.value.status_code == 429
    assert (headers["x-ratelimit-limit"], headers["x-ratelimit-remaining"]) == ("3", "0")
    assert 59 <= int(headers["x-ratelimit-reset"]) <= 60
    assert headers["retry-after"] == headers["x-ratelimit-reset"]
    assert headers["x-ratelimit-limit-requests"] == "3"


async def test_a_new_window_lets_requests_in_again() -> None:
    gate = limiter(window_s=0.1, requests_per_minute=1)
    await gate.admit(key(), 1)
    with pytest.raises(KeyRateLimited):
        await gate.admit(key(), 1)

    await asyncio.sleep(0.15)

    assert (await gate.admit(key(), 1)).headers["x-ratelimit-remaining"] == "0"


async def test_images_are_counted_by_n_and_a_refusal_counts_nothing() -> None:
    gate = limiter(requests_per_minute=10, images_per_minute=5)
    await gate.admit(key(), 4)

    with pytest.raises(KeyRateLimited) as raised:
        await gate.admit(key(), 2)
    admitted = await gate.admit(key(), 1)

    assert raised.value.headers["x-ratelimit-limit"] == "5"  # the images limit refused it
    assert admitted.headers["x-ratelimit-remaining-images"] == "0"
    assert admitted.headers["x-ratelimit-remaining-requests"] == "8"  # the refused request is not counted


async def test_asking_for_more_images_than_the_minute_allows_is_a_400_not_a_429() -> None:
    gate = limiter(images_per_minute=2)

    with pytest.raises(InvalidRequest) as raised:
        await gate.admit(key(), 3)

    assert raised.value.param == "n"


async def test_concurrency_is_limited_until_a_request_ends() -> None:
    gate = limiter(concurrent_requests=2)
    first = await gate.admit(key(), 1)
    second = await gate.admit(key(), 1)

    with pytest.raises(KeyRateLimited) as raised:
        await gate.admit(key(), 1)
    await first.release()
    third = await gate.admit(key(), 1)

    assert second.headers["x-ratelimit-remaining-concurrent"] == "0"
    assert raised.value.headers["x-ratelimit-limit-concurrent"] == "2"
    assert raised.value.headers["retry-after"] == "1"
    assert third.headers["x-ratelimit-remaining-concurrent"] == "0"
    await first.release()  # releasing twice is harmless
    await second.release()
    await third.release()


async def test_a_request_refused_per_minute_gives_its_concurrency_slot_back() -> None:
    gate = limiter(concurrent_requests=1, requests_per_minute=1)
    admitted = await gate.admit(key(), 1)
    await admitted.release()

    with pytest.raises(KeyRateLimited):
        await gate.admit(key(), 1)

    assert await gate.store.acquire_lease("ratelimit:k1:concurrent", "probe", 1, 30) == 1


async def test_a_keys_own_limits_replace_the_default_and_keys_are_counted_apart() -> None:
    gate = limiter(requests_per_minute=1)
    generous = key("k2", KeyLimits(requests_per_minute=3))
    await gate.admit(key("k1"), 1)

    for _ in range(3):
        await gate.admit(generous, 1)
    with pytest.raises(KeyRateLimited):
        await gate.admit(key("k1"), 1)
    with pytest.raises(KeyRateLimited):
        await gate.admit(generous, 1)


async def test_a_job_s_submit_counts_per_minute_but_takes_no_slot_in_flight() -> None:
    limits = limiter(concurrent_requests=1, requests_per_minute=5)

    submitted = await limits.admit(key(), 1, in_flight=False)
    running = await limits.admit(key(), 1)  # the one slot is still free

    assert "x-ratelimit-limit-concurrent" not in submitted.headers
    assert submitted.headers["x-ratelimit-remaining-requests"] == "4"
    assert running.headers["x-ratelimit-remaining-concurrent"] == "0"


async def test_a_run_s_slot_is_one_of_the_key_s_concurrent_requests_until_given_back() -> None:
    limits = limiter(concurrent_requests=1)

    slot = await limits.slot(key())
    assert slot is not None
    waiting = await limits.slot(key())
    with pytest.raises(KeyRateLimited):
        await limits.admit(key(), 1)  # a request in flight is one, whichever kind
    await slot.release()
    after = await limits.slot(key())

    assert waiting is None and after is not None


async def test_a_key_without_a_concurrency_limit_always_gets_a_slot() -> None:
    limits = limiter(requests_per_minute=1)

    slots = [await limits.slot(key()) for _ in range(3)]

    assert all(slot is not None for slot in slots)
