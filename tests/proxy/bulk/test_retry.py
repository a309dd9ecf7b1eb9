"""What is retried, and the wait before it: the server's Retry-After first, else growing backoff."""

from __future__ import annotations

import random
from email.utils import formatdate

import pytest

from proxy.bulk.retry import RetryPolicy, is_retryable, retry_after_seconds


@pytest.mark.parametrize(("status", "code", "retried"), [
    (429, None, True), (503, None, True), (502, None, True), (500, None, True), (408, None, True),
    (409, "idempotency_conflict", True), (409, "idempotency_key_reused", False),
    (409, "idempotent_replay_expired", False), (400, None, False), (401, None, False), (402, None, False),
])
def test_only_what_may_pass_next_time_is_retried(status: int, code: str | None, retried: bool) -> None:
    assert is_retryable(status, code) is retried


def test_retry_after_is_read_in_seconds_or_as_an_http_date() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(" 1.5 ") == 1.5
    assert retry_after_seconds("-3") == 0.0
    assert retry_after_seconds(formatdate(1_000_030, usegmt=True), now=1_000_000) == 30.0
    for unreadable in (None, "soon", "", "nan"):
        assert retry_after_seconds(unreadable) is None


def test_the_wait_is_the_servers_capped_or_a_doubling_backoff_with_jitter() -> None:
    policy = RetryPolicy(backoff_s=1.0, max_backoff_s=5.0, max_retry_after_s=60.0)
    rng = random.Random(3)
    assert policy.delay(1, "12", rng) == 12.0
    assert policy.delay(1, "3600", rng) == 60.0
    waits = [[policy.delay(retry, None, rng) for _ in range(50)] for retry in (1, 2, 3, 4, 5)]
    for retry, (low, high) in enumerate([(0.5, 1), (1, 2), (2, 4), (2.5, 5), (2.5, 5)]):
        assert low <= min(waits[retry]) and max(waits[retry]) <= high
        assert max(waits[retry]) - min(waits[retry]) > 0  # jittered: workers failing together spread out
