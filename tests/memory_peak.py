"""The peak of Python's heap while a block runs (tracemalloc): deterministic, unlike sampling RSS.

Every ``bytes`` a body is read into is allocated through Python's allocator, so a body read
without a cap shows here in full.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

MB = 1024 * 1024


@dataclass
class Peak:
    bytes: int = 0

    @property
    def mb(self) -> float:
        return self.bytes / MB


@contextmanager
def heap_peak() -> Iterator[Peak]:
    """``with heap_peak() as peak: ...`` then ``peak.mb``: growth above the start, at its highest."""
    started_here = not tracemalloc.is_tracing()
    if started_here:
        tracemalloc.start()
    tracemalloc.reset_peak()
    baseline = tracemalloc.get_traced_memory()[0]
    peak = Peak()
    try:
        yield peak
    finally:
        peak.bytes = tracemalloc.get_traced_memory()[1] - baseline
        if started_here:
            tracemalloc.stop()
