"""Whether a failed create may have started work the vendor bills, and so may not be sent again.

A create (a synchronous generation, or a job's create) is the one call that costs money. When it
fails, the gateway must know which of two things happened before it tries again on that vendor
account:

- **nothing started**: the request never left (``VendorUnreachable``: refused, unresolvable, a
  connect that timed out), was refused before it went out (``UnsafeVendorUrl``, a URL we cannot
  call), or the vendor answered a refusal: any 4xx (401, 402, 408, 409, 422, 429...), and the
  5xx statuses its documentation says mean "not started" (``VendorSpec.create_not_started``).
  Retrying is safe.
- **unknown**: the request went out and its answer was lost: a timeout, a reset or truncated
  answer, a body past the cap, any other 5xx. The vendor may be running it and billing it. Sent
  again, it would run and bill twice: ``AmbiguousCreate``, which the router never retries on
  that account.

A vendor that honours an idempotency key (``VendorSpec.idempotency_header``) makes the unknown
case safe: the create is sent again under the same key and the vendor answers the first result.
Only a 409 there stays unknown: CallMissed answers 409 to a key replayed with another body, which
our identical replay never is, so it means something we cannot read.
"""

from __future__ import annotations

from backends.vendors.spec import VendorSpec
from core.errors import (
    AmbiguousCreate,
    BackendError,
    UnsafeVendorUrl,
    VendorBodyTooLarge,
    VendorProtocolError,
    VendorUnreachable,
)


def started_nothing(spec: VendorSpec, error: BackendError) -> bool:
    """True when ``error``, raised by a create, proves the vendor started no work for it."""
    if isinstance(error, VendorUnreachable | UnsafeVendorUrl):
        return True
    if error.status is None:  # no answer read: a protocol error before sending (a URL we can't call)
        return isinstance(error, VendorProtocolError) and not isinstance(error, VendorBodyTooLarge)
    return error.status < 500 or error.status in spec.create_not_started


def create_failure(spec: VendorSpec, error: BackendError) -> BackendError:
    """What a failed create is to the router: ``error`` itself when sending the create again is
    safe, else an ``AmbiguousCreate`` that names it."""
    if spec.idempotency_header is not None:
        if error.status != 409:
            return error  # sent again under the same key: the vendor runs it once
    elif started_nothing(spec, error):
        return error
    return AmbiguousCreate(f"{spec.name}: a create that may have started billed work ({error.outcome}: "
                           f"{error.message[:200]}); not sent again to this account", status=error.status,
                           vendor_code=error.vendor_code)
