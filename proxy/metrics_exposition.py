"""What ``/metrics`` exports: the process's registry, or the sum of every worker's.

One process: ``proxy.metrics.REGISTRY`` as it is. Several workers (``PROMETHEUS_MULTIPROC_DIR``
set by ``boltgate serve --workers N``): each worker writes its counters, histograms and gauges
to files in that directory, and whichever worker answers the scrape merges them all (counters
and histograms summed, gauges per their ``multiprocess_mode``), so a scrape that lands on any
worker sees the whole pod. A worker that died keeps its counts (they happened); its live gauges
are dropped by the supervisor (``mark_process_dead``).

The process metrics the dashboards read (CPU seconds, resident memory) are summed over the
workers alive now, read from ``/proc``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, PlatformCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from proxy.metrics import BUILD, REGISTRY

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
_PID_IN_NAME = re.compile(r"_(\d+)\.db$")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")

__all__ = ["CONTENT_TYPE_LATEST", "exposition"]


def exposition() -> bytes:
    """The text ``/metrics`` answers with."""
    return generate_latest(_registry())


@lru_cache(maxsize=1)
def _registry() -> CollectorRegistry:
    directory = os.environ.get(MULTIPROC_DIR_VARIABLE)
    if not directory:
        return REGISTRY
    registry = CollectorRegistry(auto_describe=True)
    MultiProcessCollector(registry, directory)  # type: ignore[no-untyped-call]  # unannotated upstream
    registry.register(BUILD)
    PlatformCollector(registry=registry)
    registry.register(WorkerProcessCollector(Path(directory)))
    return registry


class WorkerProcessCollector:
    """``process_cpu_seconds_total`` and ``process_resident_memory_bytes`` summed over the live
    workers (those with a metrics file whose process still exists)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def collect(self) -> Iterable[Metric]:
        cpu_seconds = resident_bytes = 0.0
        workers = 0
        for pid in self._worker_pids():
            usage = _process_usage(pid)
            if usage is not None:
                workers += 1
                cpu_seconds += usage[0]
                resident_bytes += usage[1]
        yield CounterMetricFamily("process_cpu_seconds", "CPU seconds of the live workers, summed.",
                                  value=cpu_seconds)
        yield GaugeMetricFamily("process_resident_memory_bytes", "Resident memory of the live workers, summed.",
                                value=resident_bytes)
        yield GaugeMetricFamily("boltgate_workers", "Worker processes alive now.", value=workers)

    def _worker_pids(self) -> set[int]:
        pids = set()
        for path in self.directory.glob("*.db"):
            match = _PID_IN_NAME.search(path.name)
            if match:
                pids.add(int(match.group(1)))
        return pids


def _process_usage(pid: int) -> tuple[float, float] | None:
    """(CPU seconds, resident bytes) of ``pid`` from ``/proc``, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS, int(fields[21]) * _PAGE_BYTES
