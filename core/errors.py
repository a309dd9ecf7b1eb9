"""The one error hierarchy of boltgate, mapped to HTTP in exactly one place (``proxy.api.errors``).

Everything the gateway can refuse or fail with is one of these classes. Vendor adapters
classify a vendor's answer *at the adapter boundary* from status codes and typed fields (never
from message strings) into a ``BackendError``; the router decides from the class alone whether
to retry the same route, fail over, or give up::

    BoltgateError                      any error the gateway reports (status, type, code, param)
    ├── ClientError                    the request itself is wrong; never retried
    │   ├── InvalidRequest             400/422, names the offending field in ``param``
    │   ├── ModelNotFound              404 model_not_found
    │   ├── PayloadTooLarge            413
    │   ├── ContentPolicyViolation     400 content_policy_violation
    │   ├── AuthenticationFailed       401 invalid_api_key (the gateway's own keys)
    │   ├── PermissionDenied           403 (admin endpoints)
    │   ├── InsufficientCredits        402 insufficient_credits
    │   ├── PriceCeilingExceeded       402 price_ceiling_exceeded
    │   ├── IdempotencyConflict        409, with ``x-should-retry: false`` (a retry cannot help)
    │   └── NotFound                   404 (an expired image, an unknown key)
    ├── ClientDisconnected             499: the client hung up; the work was cancelled
    ├── RateLimited                    429, always with Retry-After (and retry-after-ms)
    │   ├── KeyRateLimited             429 rate_limit_exceeded: the client's key is over its limits
    │   └── UpstreamRateLimited        429 upstream_rate_limited: every route tried answered 429
    ├── NoBackendAvailable             503 no_backend_available, lists every attempt, Retry-After
    └── BackendError                   one route failed; the router reads these flags:
        ├── RetryableBackendError      retry the same route with backoff, then fail over
        │   ├── VendorUnavailable      connect error, 5xx
        │   ├── VendorRateLimited      429 (carries Retry-After when the vendor sent it)
        │   ├── VendorTimeout          the attempt's time ran out
        │   └── VendorProtocolError    a body we cannot read (logged, truncated)
        ├── VendorAuthError            401/402/403 from the vendor: route quarantined, fail over
        ├── ContentFiltered            blank/NSFW image: fail over or 400, never charged
        └── VendorRejectedRequest      other 4xx: the request is wrong for every route; not retried
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_RETRY_AFTER_S = 1.0
"""The wait a 503 or 429 advertises when nothing better is known."""


def retry_after_headers(seconds: float) -> dict[str, str]:
    """``Retry-After`` in whole seconds (rounded up, at least 1, as HTTP requires an integer) and
    ``retry-after-ms`` for clients that read it first (the OpenAI SDKs do)."""
    seconds = max(0.0, seconds)
    return {"retry-after": str(max(1, math.ceil(seconds))), "retry-after-ms": str(max(1, round(seconds * 1000)))}


class BoltgateError(Exception):
    """Base of every error the gateway reports; carries the OpenAI error fields."""

    status_code: int = 500
    error_type: str = "server_error"
    code: str | None = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers: dict[str, str] = headers or {}

    def body(self) -> dict[str, object]:
        """OpenAI's error envelope: ``{"error": {"message", "type", "param", "code"}}``."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


class ClientError(BoltgateError):
    status_code = 400
    error_type = "invalid_request_error"
    code = "invalid_request"


class InvalidRequest(ClientError):
    """A field is missing, has the wrong type or is out of range."""

    def __init__(self, message: str, *, param: str | None = None, status_code: int = 400,
                 code: str | None = None) -> None:
        super().__init__(message, param=param, code=code)
        self.status_code = status_code


class ModelNotFound(ClientError):
    status_code = 404
    code = "model_not_found"


class PayloadTooLarge(ClientError):
    status_code = 413
    code = "payload_too_large"


class ContentPolicyViolation(ClientError):
    code = "content_policy_violation"


class AuthenticationFailed(ClientError):
    status_code = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(ClientError):
    status_code = 403
    error_type = "permission_error"
    code = "permission_denied"


class InsufficientCredits(ClientError):
    status_code = 402
    error_type = "insufficient_quota"
    code = "insufficient_credits"


class PriceCeilingExceeded(ClientError):
    status_code = 402
    error_type = "insufficient_quota"
    code = "price_ceiling_exceeded"


class IdempotencyConflict(ClientError):
    """The same ``Idempotency-Key`` is running, or was used for another request. The OpenAI SDK
    retries 409 unless told otherwise, so the answer says ``x-should-retry: false``."""

    status_code = 409
    code = "idempotency_conflict"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message, param=param, code=code, headers={"x-should-retry": "false"})


class NotFound(ClientError):
    status_code = 404
    code = "not_found"


class ClientDisconnected(BoltgateError):
    """The client went away; nobody reads this answer, it only names the outcome in logs and metrics."""

    status_code = 499
    error_type = "invalid_request_error"
    code = "client_disconnected"


@dataclass(frozen=True, slots=True)
class RouteAttempt:
    """One try of one route: what the router did and how it ended."""

    backend: str
    region: str
    outcome: str
    status: int | None = None
    detail: str = ""
    seconds: float = 0.0

    def describe(self) -> str:
        status = f" {self.status}" if self.status is not None else ""
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.backend}/{self.region}: {self.outcome}{status}{detail}"


def _describe_routes(reason: str, attempts: Sequence[RouteAttempt], skipped: Sequence[str]) -> str:
    parts = [reason]
    if attempts:
        parts.append("attempts: " + "; ".join(a.describe() for a in attempts))
    if skipped:
        parts.append("skipped: " + "; ".join(skipped))
    return ". ".join(parts)


class RateLimited(BoltgateError):
    """Too many requests: come back after ``retry_after`` seconds (always sent as a header)."""

    status_code = 429
    error_type = "requests"
    """OpenAI's own type for request-rate limits."""
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: float = DEFAULT_RETRY_AFTER_S,
                 headers: dict[str, str] | None = None, code: str | None = None) -> None:
        super().__init__(message, code=code, headers={**retry_after_headers(retry_after), **(headers or {})})
        self.retry_after = retry_after


class KeyRateLimited(RateLimited):
    """The client's key ran past its requests/min, images/min or concurrency limit."""


class UpstreamRateLimited(RateLimited):
    """Every route tried answered 429; Retry-After is the soonest any vendor said it would take."""

    code = "upstream_rate_limited"

    def __init__(self, reason: str, attempts: Sequence[RouteAttempt] = (), skipped: Sequence[str] = (),
                 *, retry_after: float = DEFAULT_RETRY_AFTER_S) -> None:
        super().__init__(_describe_routes(reason, attempts, skipped), retry_after=retry_after)
        self.attempts = list(attempts)
        self.skipped = list(skipped)


class NoBackendAvailable(BoltgateError):
    """No route could serve the request; the message lists every attempt and every skip, and
    Retry-After says when a route is expected back."""

    status_code = 503
    error_type = "server_error"
    code = "no_backend_available"

    def __init__(self, reason: str, attempts: Sequence[RouteAttempt] = (),
                 skipped: Sequence[str] = (), *, retry_after: float = DEFAULT_RETRY_AFTER_S) -> None:
        super().__init__(_describe_routes(reason, attempts, skipped), headers=retry_after_headers(retry_after))
        self.attempts = list(attempts)
        self.skipped = list(skipped)
        self.retry_after = retry_after


class BackendError(BoltgateError):
    """One route failed. Adapters raise these; the router consumes them."""

    status_code = 502
    error_type = "server_error"
    code = "backend_error"
    retryable: bool = False
    """Retry the same route (with backoff) before failing over."""
    failover: bool = True
    """Try the next route once this one is given up."""
    quarantine: bool = False
    """Take the route out of rotation for a while (bad key, no credit)."""
    outcome: str = "error"

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None,
                 param: str | None = None, vendor_code: str | None = None) -> None:
        super().__init__(message, param=param)
        self.status = status
        self.retry_after = retry_after
        self.vendor_code = vendor_code


class RetryableBackendError(BackendError):
    retryable = True


class VendorUnavailable(RetryableBackendError):
    outcome = "unavailable"


class VendorRateLimited(RetryableBackendError):
    outcome = "rate_limited"


class VendorTimeout(RetryableBackendError):
    outcome = "timeout"


class VendorProtocolError(RetryableBackendError):
    outcome = "protocol_error"


class VendorAuthError(BackendError):
    quarantine = True
    outcome = "auth_error"


class ContentFiltered(BackendError):
    outcome = "content_filtered"
    status_code = 400
    error_type = "invalid_request_error"
    code = "content_policy_violation"


class VendorRejectedRequest(BackendError):
    """The vendor refused the request as invalid: every vendor would, so answer the client."""

    failover = False
    outcome = "rejected"
    status_code = 400
    error_type = "invalid_request_error"
    code = "upstream_rejected_request"
