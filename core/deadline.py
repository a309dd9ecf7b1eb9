"""One deadline for the whole request, shared by every retry, failover and poll."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(slots=True)
class Deadline:
    """A point on the monotonic clock after which nobody waits for the answer any more."""

    seconds: float
    started: float = field(default_factory=time.monotonic)

    @property
    def expires_at(self) -> float:
        return self.started + self.seconds

    def remaining(self) -> float:
        return max(0.0, self.expires_at - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.expires_at

    def cap(self, timeout: float) -> float:
        """The smaller of ``timeout`` and the time left."""
        return min(timeout, self.remaining())
