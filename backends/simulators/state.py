"""Everything one running simulator remembers, in one place the app and the server share."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from backends.simulators.asgi import SimResponse
from backends.simulators.bounded import BoundedLog, BoundedStore
from backends.simulators.config import SimulatorConfig
from backends.simulators.faults import FaultQueue
from backends.simulators.files import FileStore
from backends.simulators.jobs import JobStore
from backends.simulators.recording import RecordedRequest
from backends.simulators.render import RENDERS, RenderCache

REQUEST_LOG_BYTES = 64 * 1024 * 1024


@dataclass(slots=True)
class SimulatorState:
    config: SimulatorConfig
    faults: FaultQueue = field(default_factory=FaultQueue)
    requests: BoundedLog[RecordedRequest] = field(init=False)
    cancels: BoundedLog[str] = field(init=False)
    files: FileStore = field(default_factory=FileStore)
    jobs: JobStore = field(default_factory=JobStore)
    renders: RenderCache = RENDERS
    idempotent_answers: BoundedStore[str, tuple[bytes, SimResponse]] = field(
        default_factory=lambda: BoundedStore(10_000, 256 * 1024 * 1024))
    """CallMissed: per ``Idempotency-Key``, the body it came with and the answer it got."""
    billed_creates: int = 0
    """Creates the vendor accepted and bills, answered or not (an idempotent replay is not one)."""
    closing: asyncio.Event | None = None
    """Set when the server stops, so hanging requests let go; created on the server's loop."""
    release: asyncio.Event = field(default_factory=asyncio.Event)
    """Set to let the requests held by ``hold`` faults go on (and when the server stops)."""

    def __post_init__(self) -> None:
        self.requests = BoundedLog(self.config.request_log_size, REQUEST_LOG_BYTES)
        self.cancels = BoundedLog(self.config.request_log_size)


def release_held(state: SimulatorState) -> None:
    """Let the requests waiting on ``hold`` faults go on; a new event holds the ones to come."""
    state.release.set()
    state.release = asyncio.Event()
