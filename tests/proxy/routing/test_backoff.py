"""How long the router waits before a retry, and when it stops retrying one route."""

from __future__ import annotations

import time

import pytest
from tenacity import AsyncRetrying, RetryCallState

from core.deadline import Deadline
from core.errors import VendorRateLimited, VendorUnavailable
from proxy.routing.backoff import RetryAfterOrBackoff, StopWhenOutOfTime
from proxy.settings import RetryConfig


def failed(error: BaseException, attempt: int = 1, upcoming_sleep: float = 0.0) -> RetryCallState:
    state = RetryCallState(AsyncRetrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    state.set_exception((type(error), error, None))
    state.upcoming_sleep = upcoming_sleep
    return state


def test_the_vendors_retry_after_is_the_wait() -> None:
    wait = RetryAfterOrBackoff(RetryConfig(backoff_initial_s=5, jitter_s=0))

    assert wait(failed(VendorRateLimited("429", retry_after=0.3))) == 0.3


@pytest.mark.parametrize(("attempt", "low", "high"), [(1, 0.25, 0.5), (2, 0.5, 0.75), (3, 1.0, 1.25), (6, 4.0, 4.0)])
def test_without_retry_after_the_wait_is_jittered_exponential_backoff_up_to_the_max(
    attempt: int, low: float, high: float
) -> None:
    wait = RetryAfterOrBackoff(RetryConfig(backoff_initial_s=0.25, backoff_max_s=4, jitter_s=0.25))

    waits = [wait(failed(VendorUnavailable("503"), attempt)) for _ in range(50)]

    assert all(low <= value <= high for value in waits)


def test_stop_after_the_routes_attempts() -> None:
    stop = StopWhenOutOfTime(max_attempts=3, deadline=Deadline(60), max_wait_s=30)

    assert not stop(failed(VendorUnavailable("503"), attempt=2))
    assert stop(failed(VendorUnavailable("503"), attempt=3))


def test_stop_when_the_wait_is_longer_than_the_longest_honoured_retry_after() -> None:
    stop = StopWhenOutOfTime(max_attempts=3, deadline=Deadline(60), max_wait_s=30)

    assert not stop(failed(VendorRateLimited("429"), upcoming_sleep=30))
    assert stop(failed(VendorRateLimited("429"), upcoming_sleep=30.5))


def test_stop_when_the_wait_would_reach_the_deadline() -> None:
    deadline = Deadline(10, started=time.monotonic() - 8)  # about 2 s left
    stop = StopWhenOutOfTime(max_attempts=3, deadline=deadline, max_wait_s=30)

    assert not stop(failed(VendorRateLimited("429"), upcoming_sleep=1))
    assert stop(failed(VendorRateLimited("429"), upcoming_sleep=2.5))
