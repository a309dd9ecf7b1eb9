"""What a simulator received, kept so tests can assert on the exact wire traffic."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    """Lower-cased names, as HTTP/1.1 delivers them to the app."""
    json: Any
    """The parsed JSON body, or None when there was none or it did not parse."""

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "headers": self.headers, "json": self.json}


class BoundedLog(Generic[T]):
    """A thread-safe append-only log keeping the newest ``limit`` entries (benchmarks run long)."""

    def __init__(self, limit: int) -> None:
        self._entries: deque[T] = deque(maxlen=limit)
        self._lock = threading.Lock()

    def append(self, entry: T) -> None:
        with self._lock:
            self._entries.append(entry)

    def snapshot(self) -> list[T]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
