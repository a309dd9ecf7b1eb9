"""Asynchronous jobs (Runflow runs, Eachlabs predictions): a lifecycle derived from the clock.

A job's state is computed from how long ago it was created and the timing it was created with,
so nothing runs in the background and a poll costs a subtraction. Faults decide a job's fate at
creation: ``stuck_queued`` never leaves the queue, ``fail_midway`` runs then fails.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Literal

from backends.simulators.bounded import BoundedStore
from backends.simulators.config import SimulatorConfig

Fate = Literal["succeed", "stuck", "fail"]


class JobPhase(Enum):
    QUEUED = "queued"
    DISPATCHING = "dispatching"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def terminal(self) -> bool:
        return self in (JobPhase.SUCCEEDED, JobPhase.FAILED, JobPhase.CANCELED)


@dataclass(frozen=True, slots=True)
class JobTiming:
    queued_s: float
    dispatching_s: float
    running_s: float

    @classmethod
    def of(cls, config: SimulatorConfig) -> JobTiming:
        return cls(config.queued_s, config.dispatching_s, config.running_s)

    @property
    def starts_after(self) -> float:
        return self.queued_s + self.dispatching_s

    @property
    def ends_after(self) -> float:
        return self.starts_after + self.running_s


@dataclass(slots=True)
class Job:
    id: str
    input: dict[str, Any]
    outputs: tuple[str, ...]
    """Paths of the images on the simulator, served once the job succeeds."""
    timing: JobTiming
    fate: Fate = "succeed"
    nsfw: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    """Vendor details kept for the answers (Runflow's ``metadata`` and model, Eachlabs' seed)."""
    created_wall: float = field(default_factory=time.time)
    created_mono: float = field(default_factory=time.monotonic)
    canceled_after: float | None = None
    """Seconds after creation at which a cancel arrived while the job was still live."""

    def elapsed(self) -> float:
        return time.monotonic() - self.created_mono

    def phase(self) -> JobPhase:
        if self.canceled_after is not None:
            return JobPhase.CANCELED
        elapsed = self.elapsed()
        if self.fate == "stuck" or elapsed < self.timing.queued_s:
            return JobPhase.QUEUED
        if elapsed < self.timing.starts_after:
            return JobPhase.DISPATCHING
        if elapsed < self.timing.ends_after:
            return JobPhase.RUNNING
        return JobPhase.FAILED if self.fate == "fail" else JobPhase.SUCCEEDED

    def cancel(self) -> bool:
        """Stop the job if it is still live; False when it had already finished."""
        if self.phase().terminal:
            return False
        self.canceled_after = self.elapsed()
        return True

    def _lived(self) -> float:
        """Seconds of life that count: up to now, or up to the cancel."""
        return self.elapsed() if self.canceled_after is None else self.canceled_after

    def started(self) -> bool:
        return self.fate != "stuck" and self._lived() >= self.timing.starts_after

    def run_seconds(self) -> float:
        """Time spent running so far (what Eachlabs bills as ``predict_time``)."""
        if self.fate == "stuck":
            return 0.0
        return min(max(0.0, self._lived() - self.timing.starts_after), self.timing.running_s)

    def timestamp(self, after_s: float | None) -> str | None:
        """ISO 8601 UTC time ``after_s`` seconds after creation (None stays None)."""
        if after_s is None:
            return None
        moment = datetime.fromtimestamp(self.created_wall + after_s, UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def started_after(self) -> float | None:
        return self.timing.starts_after if self.started() else None

    def finished_after(self) -> float | None:
        phase = self.phase()
        if phase is JobPhase.CANCELED:
            return self.canceled_after
        return self.timing.ends_after if phase.terminal else None


class JobStore:
    """Jobs by id; the oldest are forgotten past the count or byte budget."""

    def __init__(self, max_entries: int = 100_000, max_bytes: int = 256 * 1024 * 1024) -> None:
        self._jobs: BoundedStore[str, Job] = BoundedStore(max_entries, max_bytes)

    def add(self, job: Job, weight: int = 0) -> Job:
        """Keep ``job``; ``weight`` is the bytes its input holds (an image-to-image source)."""
        self._jobs.put(job.id, job, weight)
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def all(self) -> list[Job]:
        return self._jobs.values()

    def clear(self) -> None:
        self._jobs.clear()
