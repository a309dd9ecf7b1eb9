"""How long to wait before retrying a route: the vendor's Retry-After, else jittered backoff."""

from __future__ import annotations

from tenacity import RetryCallState
from tenacity.wait import wait_exponential_jitter

from core.deadline import Deadline
from core.errors import BackendError
from proxy.settings import RetryConfig


class RetryAfterOrBackoff:
    """A tenacity wait: honour the vendor's ``Retry-After`` when it sent one."""

    def __init__(self, config: RetryConfig) -> None:
        self._backoff = wait_exponential_jitter(
            initial=config.backoff_initial_s, max=config.backoff_max_s, jitter=config.jitter_s
        )

    def __call__(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, BackendError) and error.retry_after is not None:
            return error.retry_after
        return float(self._backoff(state))


class StopWhenOutOfTime:
    """A tenacity stop: after ``max_attempts``, or when the next wait would pass the deadline
    or exceed the longest wait worth it here (fail over instead). ``max_wait_s`` is the longest
    Retry-After honoured at all, or, while another route is left, the longest wait before
    failing over to it."""

    def __init__(self, max_attempts: int, deadline: Deadline, max_wait_s: float) -> None:
        self.max_attempts = max_attempts
        self.deadline = deadline
        self.max_wait_s = max_wait_s

    def __call__(self, state: RetryCallState) -> bool:
        return (
            state.attempt_number >= self.max_attempts
            or state.upcoming_sleep > self.max_wait_s
            or state.upcoming_sleep >= self.deadline.remaining()
        )
