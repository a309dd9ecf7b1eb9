"""How a vendor module describes its wire format to the shared simulator app.

A vendor is data plus handlers: its routes, how it authenticates, the body it answers for an
error status, the headers that go with some statuses, and which faults make sense for it.
Everything else (faults, recording, image serving, the server) is shared.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from backends.simulators.asgi import SimRequest, SimResponse, json_response
from backends.simulators.config import SimulatorConfig
from backends.simulators.faults import JOB_KINDS, REQUEST_KINDS, Fault
from backends.simulators.jobs import Job
from backends.simulators.render import ImageFormat
from backends.simulators.state import SimulatorState

AuthScheme = Literal["bearer", "x-api-key"]


class SimError(Exception):
    """A vendor's refusal; the vendor's ``error_body`` turns it into that vendor's JSON."""

    def __init__(
        self,
        status: int,
        message: str | None = None,
        *,
        code: str | None = None,
        errors: list[dict[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message or f"HTTP {status}")
        self.status = status
        self.message = message
        self.code = code
        self.errors = errors or []
        self.headers = dict(headers or {})


@dataclass(slots=True)
class Call:
    """One request as a vendor handler sees it."""

    request: SimRequest
    params: dict[str, str]
    state: SimulatorState
    vendor: SimulatedVendor
    fault: Fault | None = None
    """An output or job fault this request took (``blank_image``, ``stuck_queued``...)."""
    replayed: bool = False
    """Set by a handler that answered a stored response (an idempotent replay): nothing billed."""

    @property
    def config(self) -> SimulatorConfig:
        return self.state.config

    def faulted(self, *kinds: str) -> bool:
        return self.fault is not None and self.fault.kind in kinds


Handler = Callable[[Call], Awaitable[SimResponse]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    creates_output: bool = False
    """Whether output faults (``blank_image``, ``stuck_queued``...) apply to this route."""
    auth: bool = True


def route(method: str, path: str, handler: Handler, *, creates_output: bool = False, auth: bool = True) -> Route:
    """A route whose ``path`` is a regular expression matched against the whole request path."""
    return Route(method, re.compile(path), handler, creates_output, auth)


OUTPUT_FAULTS_OF_SYNC = frozenset({"blank_image", "nsfw"})


JobCost = Callable[[SimulatorConfig, Job], Decimal | None]
"""What a job costs the caller once it is over (None while it runs, or when it never ran)."""


@dataclass(frozen=True, slots=True)
class SimulatedVendor:
    name: str
    image_format: ImageFormat
    auth: tuple[AuthScheme, ...]
    """Every scheme the vendor documents (Eachlabs shows both Bearer and X-API-Key)."""
    routes: tuple[Route, ...]
    error_body: Callable[[SimError], Any]
    error_headers: Mapping[int, Mapping[str, str]] = field(default_factory=dict)
    """Headers a status fault adds by default (e.g. 429's Retry-After), fault headers win."""
    fault_kinds: frozenset[str] = REQUEST_KINDS | OUTPUT_FAULTS_OF_SYNC
    job_cost: JobCost | None = None
    """Job vendors: how a job is billed, whether or not anyone reads its answer."""

    def error_response(self, error: SimError) -> SimResponse:
        headers = {**self.error_headers.get(error.status, {}), **error.headers}
        return json_response(self.error_body(error), error.status, headers)

    def authorized(self, headers: Mapping[str, str], api_key: str) -> bool:
        if "x-api-key" in self.auth and headers.get("x-api-key") == api_key:
            return True
        scheme, _, token = headers.get("authorization", "").partition(" ")
        return "bearer" in self.auth and scheme.lower() == "bearer" and token == api_key

    def billed_usd(self, state: SimulatorState) -> Decimal:
        """What every job this simulator ran has cost so far (answered or abandoned alike)."""
        if self.job_cost is None:
            return Decimal(0)
        costs = (self.job_cost(state.config, job) for job in state.jobs.all())
        return sum((cost for cost in costs if cost is not None), Decimal(0))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for candidate in self.routes:
            if candidate.method == method:
                found = candidate.pattern.fullmatch(path)
                if found is not None:
                    return candidate, found.groupdict()
        return None

    def check_fault(self, fault: Fault) -> None:
        """Refuse a fault this vendor cannot express, rather than let it sit unused."""
        if fault.kind not in self.fault_kinds:
            what = "a job vendor's" if fault.kind in JOB_KINDS else "an unsupported"
            raise ValueError(f"{fault.kind!r} is {what} fault; {self.name} takes {sorted(self.fault_kinds)}")
