"""What an adapter is: a frozen description of one vendor plus pure functions."""

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


@dataclass(frozen=True, slots=True)
class JobProtocol:
    """How a job-style vendor is polled: read the job id, ask about it, cancel it."""

    job_id: Callable[[HttpAnswer], str]
    poll: Callable[[str, Options], HttpCall]
    read_state: Callable[[HttpAnswer], JobState]
    cancel: Callable[[str, HttpAnswer, Options], HttpCall | None]
    """From the job id and the latest answer about the job (the create answer, or the last poll)."""


@dataclass(frozen=True, slots=True)
class VendorSpec:
    name: str
    capabilities: Capabilities
    build_request: BuildRequest
    error_fields: ErrorFields
    parse_output: ParseOutput | None = None
    """For vendors that answer at once; job vendors read their output from ``job``."""
    job: JobProtocol | None = None
    auth_header: str = "Authorization"
    auth_prefix: str = "Bearer "
    deadline_header: str | None = None
    """Header that tells the vendor how many seconds the caller still waits (our own worker drops a
    request still queued when they have passed); None: the vendor is not told."""
    default_options: Mapping[str, str] = field(default_factory=dict)

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        return {self.auth_header: f"{self.auth_prefix}{api_key}"} if api_key else {}
