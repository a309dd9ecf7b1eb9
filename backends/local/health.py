"""Whether the pipeline still works: consecutive failed requests flip readiness, then liveness.

A worker whose GPU has wedged (a CUDA error poisons the context for good) or that fails every
request for some other reason must leave the load balancer, and be restarted if it does not
recover. Only failures of the worker count: a request that fails alone after its batch was split
(``batching``); requests that were the client's fault never do. Any success resets the streak.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class FailureStreak:
    """Consecutive pipeline failures, against the two thresholds of ``LocalBackendConfig``."""

    unready_after: int = 3
    """Failures in a row after which ``/readyz`` answers 503 (no new traffic from Kubernetes)."""
    dead_after: int = 10
    """Failures in a row after which ``/healthz`` answers 503 (Kubernetes restarts the worker)."""
    consecutive: int = 0

    def failed(self) -> None:
        self.consecutive += 1

    def succeeded(self) -> None:
        self.consecutive = 0

    @property
    def healthy(self) -> bool:
        return self.consecutive < self.unready_after

    @property
    def alive(self) -> bool:
        return self.consecutive < self.dead_after
