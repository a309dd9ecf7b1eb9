"""What the client hears when no route served its request, and when to come back.

When every route tried ended rate-limited, the answer is 429 ``upstream_rate_limited`` with the
soonest ``Retry-After`` any vendor gave: the OpenAI SDK then raises ``RateLimitError`` and waits
as long as the vendors asked. Otherwise it is 503 ``no_backend_available``, whose
``Retry-After`` is the soonest a vendor said it would be back or a breaker lets a route be tried
again. With nothing said by anyone, ``retry.unavailable_retry_after_s``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from core.errors import (
    BackendError,
    BoltgateError,
    NoBackendAvailable,
    RouteAttempt,
    UpstreamRateLimited,
    VendorRateLimited,
)


@dataclass(frozen=True, slots=True)
class RouteFailure:
    """How one route's last attempt ended, and when (monotonic clock)."""

    error: BackendError
    at: float

    def wait_left(self, now: float) -> float | None:
        """What is left of the vendor's Retry-After, None when it sent none."""
        if self.error.retry_after is None:
            return None
        return max(0.0, self.error.retry_after - (now - self.at))


def exhausted(
    reason: str,
    attempts: Sequence[RouteAttempt],
    skipped: Sequence[str],
    failures: Sequence[RouteFailure],
    *,
    back_in: Sequence[float] = (),
    default_wait: float,
) -> BoltgateError:
    """The error for a request no route served; ``back_in`` are the seconds until each route
    held out by its breaker may be tried again."""
    now = time.monotonic()
    vendor_waits = [wait for failure in failures if (wait := failure.wait_left(now)) is not None]
    if failures and all(isinstance(failure.error, VendorRateLimited) for failure in failures):
        return UpstreamRateLimited("Every route tried is rate-limiting this gateway", attempts, skipped,
                                   retry_after=min(vendor_waits, default=default_wait))
    return NoBackendAvailable(reason, attempts, skipped, retry_after=min([*vendor_waits, *back_in],
                                                                         default=default_wait))
