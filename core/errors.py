"""The one error hierarchy of boltgate, mapped to HTTP in exactly one place (``proxy.api.errors``).

Every error class the gateway raises is one of these (a test checks that no other module of
``core``, ``pricing``, ``backends`` or ``proxy`` defines one; the vendor simulators, which play
other companies' servers, keep their own). Vendor adapters classify a vendor's answer *at the
adapter boundary* from status codes and typed fields (never from message strings) into a
``BackendError``; the router decides from the class alone whether to retry the same route, fail
over, or give up, and billing reads what the vendor charged from the error's typed fields::

    BoltgateError                      any error the gateway reports (status, type, code, param)
    ├── ClientError                    the request itself is wrong; never retried
    │   ├── InvalidRequest             400/422, names the offending field in ``param``
    │   │   └── ImageRefused           image unreadable or over the pixel cap (vendor's: protocol error)
    │   ├── ModelNotFound              404 model_not_found
    │   ├── PayloadTooLarge            413
    │   ├── ContentPolicyViolation     400 content_policy_violation
    │   ├── AuthenticationFailed       401 invalid_api_key (the gateway's own keys)
    │   ├── PermissionDenied           403 (admin endpoints)
    │   ├── InsufficientCredits        402 insufficient_credits
    │   ├── PriceCeilingExceeded       402 price_ceiling_exceeded
    │   ├── IdempotencyConflict        409, with ``x-should-retry: false`` (a retry cannot help)
    │   ├── UnsupportedRequest         400 unsupported_request: no route can serve it, however healthy
    │   └── NotFound                   404 (an expired image, an unknown key)
    ├── ClientDisconnected             499: the client hung up; the work was cancelled
    ├── RateLimited                    429, always with Retry-After (and retry-after-ms)
    │   ├── KeyRateLimited             429 rate_limit_exceeded: the client's key is over its limits
    │   └── UpstreamRateLimited        429 upstream_rate_limited: every route tried answered 429
    ├── NoBackendAvailable             503 no_backend_available, lists every attempt, Retry-After
    ├── StateUnavailable               503 + Retry-After: Redis or the ledger file did not answer
    │   ├── ReservationExpired         503: the hold's lease ran out and the budget has no room
    │   ├── ReservationReleased        503: another run of the job closed the hold without a charge
    │   └── KeptChargeUnreadable       503: another run of the job kept its charge first, unreadable
    ├── ConfigurationError             the deployment's own configuration is wrong: refuses to start
    │   ├── InvalidSettings            a settings file or BOLTGATE_* variable that cannot be read
    │   ├── CatalogError               a price catalog file or override that cannot be read as prices
    │   └── UnknownVendor              a vendor the price catalog has no price for
    ├── BulkInputError                 a ``boltgate generate`` command or prompts file that can't be run: exit 2
    ├── StateCommandRefused            a ``boltgate state`` command refused, nothing changed: exit 1
    │   ├── StoreInUse                 a restore while a process has the store open: try again once stopped
    │   └── BackupRefused              a restore's source is not a sound boltgate store
    │       └── PendingRefused         the same for ``--pending``: its file was moved aside
    └── BackendError                   one route failed; the router reads its flags, billing its
        │                              ``billed``, ``run_seconds`` and ``vendor_cost_usd``
        ├── RetryableBackendError      retry the same route with backoff, then fail over
        │   ├── VendorUnavailable      5xx (and a 4xx the vendor documents as retryable), a broken exchange
        │   │   ├── VendorUnreachable  refused, unresolvable, unreachable, no pooled connection: nothing sent
        │   │   ├── QueueFull          the local worker's queue is full: 503 + Retry-After
        │   │   ├── NotReady           the local model is loading or failed to: 503 + Retry-After
        │   │   └── PipelineFailed     the local pipeline raised on a batch (OOM, CUDA): 500
        │   ├── VendorRateLimited      429 (carries Retry-After when the vendor sent it)
        │   ├── VendorTimeout          the attempt's time ran out
        │   └── VendorProtocolError    a body we cannot read before anything was billed (logged)
        │       └── VendorBodyTooLarge a body past its byte cap, cut off while streaming
        ├── AmbiguousCreate            a create whose answer was lost (maybe billed): fail over, never resent
        ├── UnsafeVendorUrl            a vendor's URL we refuse: internal address, credentials, off-origin
        ├── UnusableOutput             billed work whose output can't be used: fail over, never retried
        ├── VendorAuthError            401/403 from the vendor: its whole account quarantined, fail over
        │   └── VendorOutOfCredit      402: the account quarantined briefly, then re-checked
        ├── VendorNotFound             404 from the vendor: our model path or account is wrong there
        ├── JobAbandoned               we stopped waiting for a polled job: cancelled if we can, else billed
        ├── JobFailed                  the vendor ran the job and it failed (maybe billed): fail over
        ├── ContentFiltered            blank/NSFW image: fail over or 400, never charged to the client
        └── VendorRejectedRequest      400/409/422 for a request we accepted: fail over; 400 if all refuse
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

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


class ImageRefused(InvalidRequest):
    """An image cannot be read, or its header declares more pixels than allowed: checked before
    anything decodes it. ``code`` is ``image_too_large`` or ``invalid_image``."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message, param="image", code=code)


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


class UnsupportedRequest(ClientError):
    """Every route was skipped for what it cannot do (steps, size, n, image-to-image), none for
    its health: retrying cannot help, the request must change. The message lists each reason."""

    code = "unsupported_request"

    def __init__(self, reasons: Sequence[str]) -> None:
        super().__init__("No route of this gateway can serve a request like this: " + "; ".join(reasons))
        self.reasons = list(reasons)


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


class StateUnavailable(BoltgateError):
    """The state store did not answer within its timeout (Redis down, frozen or restarting).

    Raised by the store implementations at their boundary, so every request that needs the
    ledger gets a clear 503 with ``Retry-After`` instead of a 500; the ledger's operations are
    atomic and fenced, and a settle that went unconfirmed is voided
    (``proxy.unconfirmed_charges``), so a request answered with this error is never charged.
    """

    status_code = 503
    error_type = "server_error"
    code = "state_unavailable"

    def __init__(self, message: str, *, retry_after_s: int = 2) -> None:
        super().__init__(message, headers=retry_after_headers(retry_after_s))
        self.retry_after_s = retry_after_s


class ReservationExpired(StateUnavailable):
    """The request's credit hold ran out (or an async job's run again held it for less) before it
    could be charged, and the budget has no room for the charge any more: the images are not
    delivered and nothing is charged."""

    code = "reservation_expired"


class ReservationReleased(StateUnavailable):
    """The request's credit hold was closed without a charge before its settle: another run of
    the same async job gave it back (it failed, or its unconfirmed charge was voided). Nothing is
    charged, so the images are not delivered: taking "closed" for "charged already" gave them away."""

    code = "reservation_released"


class KeptChargeUnreadable(StateUnavailable):
    """Another run of the same async job kept its charge for the hold first, and that charge
    cannot be read (the store did not answer, or what is kept is unreadable): nothing is settled
    by this run. Unlike any other failure to keep a charge, this one says for certain that this
    run's charge is not the one kept, so its vendor cost is a loss of its own (``proxy.gateway``)."""

    code = "state_unavailable"


class ConfigurationError(BoltgateError):
    """The deployment's configuration names something the gateway cannot serve; raised at startup."""

    status_code = 500
    error_type = "server_error"
    code = "configuration_error"


class InvalidSettings(ConfigurationError):
    """The settings cannot be read: a file that is not TOML, a value of the wrong kind, a typo.
    The message lists every problem in words, with where it came from."""

    code = "invalid_settings"
class BulkInputError(BoltgateError):
    """``boltgate generate`` (a client of the gateway) was given flags or a prompts file it cannot
    run; the message names the line. Refused before any request is sent, so nothing is paid."""

    status_code = 400
    error_type = "invalid_request_error"
    code = "bulk_input_invalid"


class StateCommandRefused(BoltgateError):
    """``boltgate state backup|restore`` refused what it was asked, before changing anything; the
    message says why and what to do. An operator's command, never an HTTP answer."""

    code = "state_command_refused"


class StoreInUse(StateCommandRefused):
    """A restore refused because a process has the store open (``core.state.store_lock``): the
    same restore succeeds once every gateway on the store has stopped."""


class BackupRefused(StateCommandRefused):
    """A restore's source is not a backup that can be restored (not a file, not SQLite, not sound,
    not a boltgate store, the store itself)."""


class PendingRefused(BackupRefused):
    """``state restore --pending``'s file was refused and moved aside to ``moved_to``, so that the
    gateway starts on the store it had."""

    def __init__(self, message: str, moved_to: Path) -> None:
        super().__init__(message)
        self.moved_to = moved_to


class CatalogError(ConfigurationError):
    """A catalog file or override that cannot be read as prices."""

    code = "catalog_error"


class UnknownVendor(ConfigurationError):
    """A vendor with no entry in the price catalog: a route to it could bill nothing."""

    code = "unknown_vendor"

    def __init__(self, vendor: str, known: Sequence[str]) -> None:
        super().__init__(f"no price for vendor {vendor!r}; the catalog lists {', '.join(known)}")
        self.vendor = vendor
        self.known = list(known)


class BackendError(BoltgateError):
    """One route failed. Adapters raise these; the router consumes them.

    The flags (class attributes) tell the router what to do; the vendor's facts (instance
    fields) tell billing what the failed attempt cost the gateway: ``billed`` says the vendor
    charged for it anyway, ``vendor_cost_usd`` is the amount it reported, else ``run_seconds``
    prices it from the catalog.
    """

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
        self.billed: bool = billed
        """The vendor charged for this failed attempt: a gateway loss, never the client's."""
        self.run_seconds: float | None = run_seconds
        """Run time the vendor reported (and bills by), when it did."""
        self.vendor_cost_usd: Decimal | None = vendor_cost_usd
        """What the vendor said the attempt cost, when it said."""


class RetryableBackendError(BackendError):
    retryable = True


class VendorUnavailable(RetryableBackendError):
    outcome = "unavailable"


class VendorUnreachable(VendorUnavailable):
    """The request never reached the vendor (connection refused, a name that does not resolve,
    no route to the host, a connect that timed out): nothing was sent, so nothing can have
    started or been billed, and any call, a create included, is safe to send again."""


class QueueFull(VendorUnavailable):
    """Too many requests wait already at the local worker: come back later or go elsewhere."""

    status_code = 503
    code = "queue_full"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, status=503, retry_after=retry_after)
        self.headers = retry_after_headers(retry_after)


class NotReady(VendorUnavailable):
    """The local model is still loading (or failed to): try another route."""

    status_code = 503
    code = "not_ready"

    def __init__(self, message: str, *, retry_after: float = 5.0) -> None:
        super().__init__(message, status=503, retry_after=retry_after)
        self.headers = retry_after_headers(retry_after)


class PipelineFailed(VendorUnavailable):
    """The local pipeline raised on a batch (out of memory, a CUDA error): this worker, not the request."""

    status_code = 500
    code = "pipeline_failed"


class VendorRateLimited(RetryableBackendError):
    outcome = "rate_limited"


class VendorTimeout(RetryableBackendError):
    outcome = "timeout"


class VendorProtocolError(RetryableBackendError):
    outcome = "protocol_error"


class VendorBodyTooLarge(VendorProtocolError):
    """A vendor's body passed the byte cap (a runaway or hostile answer): read no further."""

    outcome = "body_too_large"


class AmbiguousCreate(BackendError):
    """A request that creates billable work (a generation, a job) was sent and then its answer was
    lost: a timeout after the request went out, a connection reset after the body was written,
    a 5xx the vendor's documentation does not say means "not started". The vendor may be running
    it and will bill it, and sending it again would start and bill a second one (unless the
    vendor honours an idempotency key, whose adapter then never raises this). So it is never
    retried on the same vendor account: the router fails over to another account, and books the
    attempt as the gateway's possible loss (``billed``, at its estimated cost; the client pays
    only for the image it gets)."""

    outcome = "ambiguous_create"

    def __init__(self, message: str, *, status: int | None = None, vendor_code: str | None = None) -> None:
        super().__init__(message, status=status, vendor_code=vendor_code, billed=True)


class UnsafeVendorUrl(BackendError):
    """A vendor named a URL the gateway refuses to fetch: fail over at once, never charged."""

    outcome = "unsafe_url"


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


class VendorNotFound(BackendError):
    """404 from the vendor: our model path or account is wrong there; try the next route."""

    outcome = "not_found"


class JobAbandoned(BackendError):
    """We stopped waiting for a polled job (time budget, client gone, a poll we could not use). It
    was cancelled where the vendor publishes a cancel; otherwise it runs on and is ``billed``. Fail
    over, never retry the route: a retry would create and pay for another job."""

    outcome = "job_abandoned"


class JobFailed(BackendError):
    """The vendor ran the job and it failed; another vendor may well succeed."""

    outcome = "job_failed"

    def __init__(self, message: str, *, billed: bool, vendor_code: str | None = None,
                 run_seconds: float | None = None, vendor_cost_usd: Decimal | None = None) -> None:
        # ``billed`` has no default here: whoever reads a failed job must say whether it cost money.
        super().__init__(message, vendor_code=vendor_code, billed=billed, run_seconds=run_seconds,
                         vendor_cost_usd=vendor_cost_usd)


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

