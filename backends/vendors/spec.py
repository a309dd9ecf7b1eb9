"""What an adapter is: a frozen description of one vendor plus pure functions.

Everything the rest of the gateway needs to know about a vendor lives in its ``VendorSpec``:
the wire format (two pure functions), the limits the router filters on (``capabilities``), the
operational facts (default base URL, key variable, price entry, demo order: ``VendorFacts``)
and what of all that the vendor's own documentation confirms (``behaviours``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from backends.base import Capabilities
from backends.vendors.messages import HttpAnswer, HttpCall, VendorOutput
from core.request import ImageRequest

Options = Mapping[str, str]
BuildRequest = Callable[[ImageRequest, Options], HttpCall]
ParseOutput = Callable[[HttpAnswer], VendorOutput]
ErrorFields = Callable[[Any], tuple[str | None, str]]
"""From a parsed error body to (vendor code, message); the status ladder does the rest."""
AuthScheme = Literal["bearer", "x-api-key"]


@dataclass(frozen=True, slots=True)
class JobState:
    """One poll's reading of a vendor job."""

    phase: Literal["pending", "succeeded", "failed"]
    output: VendorOutput | None = None
    failure_code: str | None = None
    failure_message: str = ""
    billed: bool = False
    """The vendor charged for this job even though it failed (it ran)."""
    run_seconds: float | None = None
    vendor_cost_usd: Decimal | None = None
    """What a failed job ran and cost, so a billed failure can be booked as the gateway's loss."""
    content_filtered: bool = False
    """The vendor's safety checker refused the job (a content policy answer, not a fault)."""


@dataclass(frozen=True, slots=True)
class JobProtocol:
    """How a job-style vendor is polled: read the job id, ask about it, maybe cancel it."""

    job_id: Callable[[HttpAnswer], str]
    poll: Callable[[str, Options], HttpCall]
    read_state: Callable[[HttpAnswer], JobState]
    cancel: Callable[[str, Options], HttpCall] | None
    """None when the vendor publishes no cancel: an abandoned job runs on and is paid for."""
    poll_interval_s: float
    """The pace the vendor documents (or its official SDK uses) between polls."""
    cancel_stops_billing: bool = False
    """A job cancelled before it finishes is not billed (the vendor says so). An accepted cancel
    is not taken as proof that the job stopped: one poll after it must show the job ended unbilled
    (``polling``), else the abandoned job is booked as billed."""
    client_ref_field: str | None = None
    """The create's field for an id of our choosing that the vendor keeps on the job (Runflow's
    ``client_ref``): each create carries the request's key (``core.create_key``) in it."""
    find: Callable[[str, Options], HttpCall] | None = None
    """The call that looks a job up by that id, after a create whose answer was lost: the job
    found is polled (and paid once) instead of failing over. None: no documented way to find one."""
    found: Callable[[HttpAnswer, str], str | None] | None = None
    """The id of the job ``find`` answered whose client id is exactly ours, else None."""


@dataclass(frozen=True, slots=True)
class Behaviour:
    """One thing the adapter relies on, and where the vendor says so (``source``), or not."""

    what: str
    source: str | None = None
    """The documentation page and section (or official SDK file) that shows it; None: assumed."""

    @property
    def confirmed(self) -> bool:
        return self.source is not None


@dataclass(frozen=True, slots=True)
class VendorFacts:
    """Where the vendor lives and how the gateway names it in settings, prices and the demo."""

    default_base_url: str | None
    """None: there is no public default (our own GPU worker)."""
    key_env: str
    """The environment variable holding the key, unless a route names another."""
    price_key: str
    """Its entry in the price catalog."""
    demo_priority: int | None = None
    """Its place in the ``make run`` demo over the simulators (lower first); None: not in it."""
    key_required: bool = True
    """False: a route works without a key (our own GPU worker takes one only if configured)."""


@dataclass(frozen=True, slots=True)
class VendorSpec:
    name: str
    capabilities: Capabilities
    build_request: BuildRequest
    error_fields: ErrorFields
    facts: VendorFacts
    parse_output: ParseOutput | None = None
    """For vendors that answer at once; job vendors read their output from ``job``."""
    job: JobProtocol | None = None
    deadline_header: str | None = None
    """Header that tells the vendor how many seconds the caller still waits (our own worker drops a
    request still queued when they have passed); None: the vendor is not told."""
    auth_scheme: AuthScheme = "bearer"
    """How the key is sent unless a route's ``auth_scheme`` option says otherwise."""
    default_options: Mapping[str, str] = field(default_factory=dict)
    extra_options: frozenset[str] = frozenset()
    """Options the adapter reads that have no default (Runflow's ``add_signature``); with
    ``default_options`` and ``auth_scheme`` they are every name a route's ``options`` may use."""
    retry_statuses: frozenset[int] = frozenset()
    """4xx statuses the vendor documents as retryable (Runflow's 409: "refetch and retry")."""
    idempotency_header: str | None = None
    """The header under which the vendor documents an idempotency key for creates (CallMissed's
    ``Idempotency-Key``): every create carries the request's key (``core.create_key``), so a
    create whose answer was lost is sent again under it and the vendor runs and bills it once.
    None: the vendor documents no such key, and a create whose answer was lost is never sent
    again to that account (``create_safety``)."""
    create_not_started: frozenset[int] = frozenset()
    """5xx statuses the vendor documents as refusing a create before any work began (Eachlabs:
    an HTTP error means the prediction was not accepted): retried like any refusal. Any other
    5xx answer to a create may have started billed work."""
    behaviours: tuple[Behaviour, ...] = ()
    """What the adapter relies on, confirmed by the vendor's documentation or assumed."""

    @property
    def option_names(self) -> frozenset[str]:
        """Every name a route's ``options`` may use (any other is a typo, refused with the settings)."""
        return frozenset({*self.default_options, *self.extra_options, "auth_scheme"})

    def auth_headers(self, api_key: str | None, options: Options) -> dict[str, str]:
        if not api_key:
            return {}
        scheme = options.get("auth_scheme") or self.auth_scheme
        if scheme == "x-api-key":
            return {"X-API-Key": api_key}
        if scheme == "bearer":
            return {"Authorization": f"Bearer {api_key}"}
        raise ValueError(f"{self.name}: auth_scheme must be 'bearer' or 'x-api-key', not {scheme!r}")
