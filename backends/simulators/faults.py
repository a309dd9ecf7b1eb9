"""Fault injection: a FIFO of misbehaviours the next matching requests will suffer.

Request faults (``REQUEST_KINDS``) hit whatever vendor request comes next: a create, a poll or
an image download. ``hang`` and ``reset`` strike before the vendor reads the request;
``accept_hang`` and ``accept_reset`` after it did the work (a create is accepted and billed),
in place of its answer: the answer lost on the way back, which leaves a client unsure.
Output faults (``OUTPUT_KINDS``) shape generated images or jobs, so only a
request that creates images takes them; a poll never consumes one. Each fault applies to
``times`` requests (None: forever) and may be narrowed to a method and a path pattern.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

REQUEST_KINDS = frozenset({"latency", "status", "hang", "hold", "reset", "malformed", "accept_hang", "accept_reset"})
"""``hold`` keeps the request waiting until the simulator lets held requests go
(``SimulatorServer.release_held``, ``POST /_sim/release``), then answers it as usual: a vendor
that is slow for exactly as long as a test needs."""
LOST_ANSWER_KINDS = frozenset({"accept_hang", "accept_reset"})
"""The vendor serves the request (and bills a create), then hangs or resets instead of answering."""
OUTPUT_KINDS = frozenset({"blank_image", "nsfw", "output_404"})
JOB_KINDS = frozenset({"stuck_queued", "fail_midway"})
FAULT_KINDS = REQUEST_KINDS | OUTPUT_KINDS | JOB_KINDS

_NONE = type(None)
_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "kind": str,
    "times": (int, _NONE),
    "status": (int, _NONE),
    "seconds": (int, float, _NONE),
    "headers": dict,
    "body": (str, _NONE),
    "method": (str, _NONE),
    "path": (str, _NONE),
}


@dataclass(slots=True)
class Fault:
    """One misbehaviour. ``seconds`` delays any kind before it acts (for ``latency`` it is all
    it does); ``body`` replaces the default body of ``status`` and ``malformed``."""

    kind: str
    times: int | None = 1
    status: int | None = None
    seconds: float | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    method: str | None = None
    path: str | None = None
    """A regular expression searched in the request path, e.g. ``^/v1/runs/``."""

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {sorted(FAULT_KINDS)}")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1, or None for forever")
        if self.kind == "status" and (self.status is None or not 100 <= self.status <= 599):
            raise ValueError("a status fault needs an HTTP status")
        if self.kind == "latency" and not self.seconds:
            raise ValueError("a latency fault needs seconds")
        if self.path is not None:
            try:
                re.compile(self.path)
            except re.error as exc:
                raise ValueError(f"fault path is not a regular expression: {exc}") from None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fault:
        """Build from the admin API's JSON, rejecting unknown keys and mistyped values."""
        for name, value in data.items():
            expected = _JSON_TYPES.get(name)
            if expected is None:
                raise ValueError(f"unknown fault field {name!r}")
            if not isinstance(value, expected) or isinstance(value, bool):
                raise ValueError(f"fault field {name!r} has the wrong type")
        headers = data.get("headers", {})
        if not all(isinstance(value, str) for value in headers.values()):
            raise ValueError("fault headers must map names to strings")
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def matches(self, method: str, path: str, *, creates_output: bool) -> bool:
        if self.kind not in REQUEST_KINDS and not creates_output:
            return False
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path is None or re.search(self.path, path) is not None


class FaultQueue:
    """Thread-safe: tests push from their thread while the server's loop takes."""

    def __init__(self) -> None:
        self._entries: list[tuple[Fault, list[int | None]]] = []
        self._lock = threading.Lock()

    def push(self, *faults: Fault) -> None:
        with self._lock:
            self._entries.extend((fault, [fault.times]) for fault in faults)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def pending(self) -> list[Fault]:
        with self._lock:
            return [fault for fault, _ in self._entries]

    def take(self, method: str, path: str, *, creates_output: bool) -> Fault | None:
        """The first queued fault this request matches, using up one of its ``times``."""
        if not self._entries:
            return None
        with self._lock:
            for index, (fault, remaining) in enumerate(self._entries):
                if not fault.matches(method, path, creates_output=creates_output):
                    continue
                left = remaining[0]
                if left is not None:
                    remaining[0] = left - 1
                    if left == 1:
                        del self._entries[index]
                return fault
        return None
