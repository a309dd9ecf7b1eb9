"""When a bulk request is tried again, and how long to wait first.

Retried: connection errors and timeouts, 408, 425, 429, 500, 502, 503, 504, and a 409 saying the
same ``Idempotency-Key`` is still running (an earlier try of ours that timed out on our side).
Every retry sends the same ``Idempotency-Key``, so whatever an earlier try was charged is
replayed, not charged again. Not retried: anything else (a 400 will be a 400 again; a 409 saying
the key was used with another request or its replay has expired is final).

The wait is the server's ``Retry-After`` (seconds or an HTTP date) when it gives one, capped by
``max_retry_after_s``; otherwise exponential backoff with jitter, so many workers that failed
together do not come back together.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

_JITTER = random.Random()
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
STILL_RUNNING_CODE = "idempotency_conflict"
"""The gateway's 409 code while another request with the same key runs (others are final)."""


def is_retryable(status: int, code: str | None) -> bool:
    return status in RETRYABLE_STATUSES or (status == 409 and code == STILL_RUNNING_CODE)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` in seconds from now, or None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:
            return None
        seconds = moment.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 4
    """Tries after the first."""
    backoff_s: float = 1.0
    """The first wait without ``Retry-After``; doubled each retry."""
    max_backoff_s: float = 30.0
    max_retry_after_s: float = 120.0

    def delay(self, retry: int, retry_after: str | None, rng: random.Random | None = None) -> float:
        """How long to wait before retry number ``retry`` (1-based)."""
        asked = retry_after_seconds(retry_after)
        if asked is not None:
            return min(asked, self.max_retry_after_s)
        ceiling = min(self.max_backoff_s, self.backoff_s * 2.0 ** (retry - 1))
        return ceiling * (rng or _JITTER).uniform(0.5, 1.0)
