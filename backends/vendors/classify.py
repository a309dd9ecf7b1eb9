"""The one status ladder: a vendor's HTTP error becomes a typed ``BackendError``.

Adapters only say where their error envelope keeps the code and message; which statuses are
retried, fail over or take the route out is decided here, once for every vendor.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping

from core.errors import (
    BackendError,
    VendorAuthError,
    VendorNotFound,
    VendorOutOfCredit,
    VendorRateLimited,
    VendorRejectedRequest,
    VendorTimeout,
    VendorUnavailable,
)


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if "," in value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def classify_status(
    status: int,
    headers: Mapping[str, str],
    *,
    vendor_code: str | None,
    message: str,
    retry_statuses: frozenset[int] = frozenset(),
) -> BackendError:
    """``retry_statuses``: 4xx statuses the vendor itself documents as worth retrying."""
    retry_after = parse_retry_after(headers)
    text = f"vendor answered {status}" + (f" {vendor_code}" if vendor_code else "") + f": {message[:300]}"
    kind: type[BackendError]
    if status in retry_statuses:
        kind = VendorUnavailable
    elif status == 402:
        kind = VendorOutOfCredit
    elif status in (401, 403):
        kind = VendorAuthError
    elif status == 408:
        kind = VendorTimeout
    elif status == 429:
        kind = VendorRateLimited
    elif status >= 500:
        kind = VendorUnavailable
    elif status == 404:
        kind = VendorNotFound
    else:
        kind = VendorRejectedRequest
    return kind(text, status=status, retry_after=retry_after, vendor_code=vendor_code)
