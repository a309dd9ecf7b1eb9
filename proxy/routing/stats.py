"""Each route's recent record, shared by every replica: attempts, errors and a latency histogram.

Every attempt adds one count to a per-minute hash in the state store (one ``hincr``, which
expires with its window), so all replicas write into, and read from, the same numbers. What is
read back covers the last ``windows`` minutes:

- p50 and p95 of successful attempts, interpolated within the histogram's buckets;
- the error rate of attempts (a request the vendor rejected as invalid is not the route's fault
  and is not counted);
- a decayed latency estimate: the mean success latency of each minute, weighted by half for
  every minute of age, which is what ``routing_policy = "fastest"`` orders by.

State::

    stats:<route>:<minute>    {"ok:<bucket>": successes, "err": failures}, TTL: the view's span
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.state.base import StateStore
from proxy.routing.route import Route

LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.5, 8.0,
                   10.0, 13.0, 17.0, 22.0, 30.0, 45.0, 60.0, 90.0, 120.0)
"""Upper bounds (seconds) of the latency buckets; slower attempts count in the last one."""


def bucket_of(seconds: float) -> int:
    for index, bound in enumerate(LATENCY_BUCKETS):
        if seconds <= bound:
            return index
    return len(LATENCY_BUCKETS) - 1


def _bounds(index: int) -> tuple[float, float]:
    return (LATENCY_BUCKETS[index - 1] if index else 0.0), LATENCY_BUCKETS[index]


def quantile(counts: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile of a bucketed histogram, interpolated within its bucket."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            low, high = _bounds(index)
            return low + (high - low) * max(0.0, rank - seen) / count
        seen += count
    return LATENCY_BUCKETS[-1]


def mean(counts: Sequence[int]) -> float | None:
    total = sum(counts)
    if total == 0:
        return None
    return sum(count * sum(_bounds(index)) / 2 for index, count in enumerate(counts)) / total


@dataclass(frozen=True, slots=True)
class RouteSummary:
    successes: int = 0
    errors: int = 0
    p50_s: float | None = None
    p95_s: float | None = None
    estimate_s: float | None = None
    """The decayed latency estimate; None before the route has served anything recently."""

    @property
    def attempts(self) -> int:
        return self.successes + self.errors

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.attempts if self.attempts else None


class RouteStats:
    def __init__(self, store: StateStore, *, window_s: float = 60.0, windows: int = 5,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.window_s = window_s
        self.windows = windows
        self.clock = clock

    def _window(self) -> int:
        return int(self.clock() // self.window_s)

    async def record(self, route: Route, seconds: float, *, ok: bool) -> None:
        field = f"ok:{bucket_of(seconds)}" if ok else "err"
        await self.store.hincr(f"stats:{route.key}:{self._window()}", field, 1,
                               ttl=self.window_s * (self.windows + 1))

    async def summary(self, route: Route) -> RouteSummary:
        now = self._window()
        tables = await asyncio.gather(*(self.store.hgetall(f"stats:{route.key}:{now - age}")
                                        for age in range(self.windows)))
        totals = [0] * len(LATENCY_BUCKETS)
        errors = 0
        weighted, weights = 0.0, 0.0
        for age, table in enumerate(tables):
            counts = [table.get(f"ok:{index}", 0) for index in range(len(LATENCY_BUCKETS))]
            errors += table.get("err", 0)
            totals = [a + b for a, b in zip(totals, counts, strict=True)]
            window_mean = mean(counts)
            if window_mean is not None:
                weight = 0.5 ** age
                weighted += weight * window_mean
                weights += weight
        return RouteSummary(sum(totals), errors, quantile(totals, 0.5), quantile(totals, 0.95),
                            weighted / weights if weights else None)


class LatencyBoard:
    """Every route's summary, read from the shared store at most once per ``refresh_s`` per
    replica: what the latency-aware policies and hedging consult on each request."""

    def __init__(self, stats: RouteStats, refresh_s: float = 1.0) -> None:
        self.stats = stats
        self.refresh_s = refresh_s
        self._read_at = float("-inf")
        self._summaries: dict[str, RouteSummary] = {}
        self._lock = asyncio.Lock()

    async def summaries(self, routes: Sequence[Route]) -> dict[str, RouteSummary]:
        if time.monotonic() - self._read_at >= self.refresh_s:
            async with self._lock:
                if time.monotonic() - self._read_at >= self.refresh_s:
                    read = await asyncio.gather(*(self.stats.summary(route) for route in routes))
                    self._summaries = {route.key: summary for route, summary in zip(routes, read, strict=True)}
                    self._read_at = time.monotonic()
        return self._summaries
