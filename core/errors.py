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
    │   ├── IdempotencyConflict        409
    │   └── NotFound                   404 (an expired image, an unknown key)
    ├── ClientDisconnected             499: the client hung up; the work was cancelled
    ├── NoBackendAvailable             503 no_backend_available, lists every attempt
    └── BackendError                   one route failed; the router reads these flags:
        ├── RetryableBackendError      retry the same route with backoff, then fail over
        │   ├── VendorUnavailable      connect error, 5xx (and statuses a vendor says to retry)
        │   ├── VendorRateLimited      429 (carries Retry-After when the vendor sent it)
        │   ├── VendorTimeout          the attempt's time ran out
        │   └── VendorProtocolError    a body we cannot read (logged, truncated)
        ├── UnusableOutput             the vendor did billed work whose output can't be used
        │                              (unknown shape, corrupt image): fail over, never retried
        ├── VendorAuthError            401/403 from the vendor: the account quarantined, fail over
        │   └── VendorOutOfCredit      402: the account quarantined briefly, then re-checked
        ├── ContentFiltered            blank/NSFW image: fail over or 400, never charged
        └── VendorRejectedRequest      400/409/422: this vendor can't take the request; fail over
                                       (the client hears 400 only when every route refused it)

Every ``BackendError`` says whether the vendor billed the failed attempt (``billed``, with
``run_seconds`` and ``vendor_cost_usd`` when known): the router books such an attempt as the
gateway's loss, never the client's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal


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
    status_code = 409
    code = "idempotency_conflict"


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


class NoBackendAvailable(BoltgateError):
    """No route could serve the request; the message lists every attempt and every skip."""

    status_code = 503
    error_type = "server_error"
    code = "no_backend_available"

    def __init__(self, reason: str, attempts: Sequence[RouteAttempt] = (),
                 skipped: Sequence[str] = ()) -> None:
        parts = [reason]
        if attempts:
            parts.append("attempts: " + "; ".join(a.describe() for a in attempts))
        if skipped:
            parts.append("skipped: " + "; ".join(skipped))
        super().__init__(". ".join(parts))
        self.attempts = list(attempts)
        self.skipped = list(skipped)


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
                 param: str | None = None, vendor_code: str | None = None, billed: bool = False,
                 run_seconds: float | None = None, vendor_cost_usd: Decimal | None = None) -> None:
        super().__init__(message, param=param)
        self.status = status
        self.retry_after = retry_after
        self.vendor_code = vendor_code
        self.billed = billed
        """The vendor charged for this failed attempt (its work ran): a gateway loss."""
        self.run_seconds = run_seconds
        self.vendor_cost_usd = vendor_cost_usd


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


class UnusableOutput(BackendError):
    """The vendor did the work (and billed it) but its output can't be used: an answer of a
    shape no documentation shows, an image that does not decode or declares absurd dimensions.
    Asking the same vendor again would pay it again, so fail over instead."""

    outcome = "unusable_output"

    def __init__(self, message: str, *, billed: bool = True, run_seconds: float | None = None,
                 vendor_cost_usd: Decimal | None = None, status: int | None = None) -> None:
        super().__init__(message, status=status, billed=billed, run_seconds=run_seconds,
                         vendor_cost_usd=vendor_cost_usd)


class VendorAuthError(BackendError):
    """The vendor refused our key (401/403): every region of that account is out for a while."""

    quarantine = True
    outcome = "auth_error"


class VendorOutOfCredit(VendorAuthError):
    """402: the account can't pay now. It may clear on its own (Eachlabs counts in-flight
    predictions against the balance), so the account is re-checked after a short quarantine."""

    outcome = "out_of_credit"


class ContentFiltered(BackendError):
    outcome = "content_filtered"
    status_code = 400
    error_type = "invalid_request_error"
    code = "content_policy_violation"


class VendorRejectedRequest(BackendError):
    """The vendor refused a request our own validation accepted (400/409/422): this vendor can't
    take it, another may. Fail over without quarantining the route; the router answers the
    client with this (a 400) only when every route it tried refused the request."""

    outcome = "rejected"
    status_code = 400
    error_type = "invalid_request_error"
    code = "upstream_rejected_request"
