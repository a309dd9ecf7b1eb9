"""A map that forgets its oldest entries past a count or a byte budget.

Simulators serve benchmarks for hours: every store they keep (rendered images, served files,
jobs, the request log) must stay bounded even when each entry carries a megabyte-sized
image-to-image source. Locked, because tests read from their own thread and the render cache is
shared by every simulator in the process.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedStore(Generic[K, V]):
    def __init__(self, max_entries: int, max_bytes: int | None = None) -> None:
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, key: K, value: V, weight: int = 0) -> None:
        """Store ``value`` as the newest entry; ``weight`` is the bytes it holds."""
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._bytes -= previous[1]
            self._entries[key] = (value, weight)
            self._bytes += weight
            while len(self._entries) > 1 and (
                len(self._entries) > self._max_entries
                or (self._max_bytes is not None and self._bytes > self._max_bytes)
            ):
                _, (_, evicted) = self._entries.popitem(last=False)
                self._bytes -= evicted

    def get(self, key: K, *, touch: bool = False) -> V | None:
        """The value, or None; ``touch`` makes it the newest (least-recently-used eviction)."""
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            if touch:
                self._entries.move_to_end(key)
            return found[0]

    def values(self) -> list[V]:
        with self._lock:
            return [value for value, _ in self._entries.values()]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)


class BoundedLog(Generic[V]):
    """An append-only log keeping the newest entries within its budget."""

    def __init__(self, max_entries: int, max_bytes: int | None = None) -> None:
        self._store: BoundedStore[int, V] = BoundedStore(max_entries, max_bytes)
        self._numbers = itertools.count()

    def append(self, entry: V, weight: int = 0) -> None:
        self._store.put(next(self._numbers), entry, weight)

    def snapshot(self) -> list[V]:
        return self._store.values()

    def clear(self) -> None:
        self._store.clear()
