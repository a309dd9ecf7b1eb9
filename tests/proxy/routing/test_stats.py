"""Route statistics shared through the state store: quantiles, error rate, a decayed estimate."""

from __future__ import annotations

import pytest

from core.state.memory import MemoryStateStore
from proxy.routing.stats import LATENCY_BUCKETS, LatencyBoard, RouteStats, bucket_of, mean, quantile
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_an_attempt_falls_in_the_first_bucket_that_holds_it() -> None:
    assert bucket_of(0.01) == 0
    assert LATENCY_BUCKETS[bucket_of(1.1)] == 1.25
    assert bucket_of(1_000) == len(LATENCY_BUCKETS) - 1


def test_quantiles_interpolate_within_a_bucket() -> None:
    counts = [0] * len(LATENCY_BUCKETS)
    counts[bucket_of(1.1)] = 100  # 100 attempts between 1.0 and 1.25 s

    assert quantile(counts, 0.5) == pytest.approx(1.125)
    assert quantile(counts, 0.95) == pytest.approx(1.2375)
    assert mean(counts) == pytest.approx(1.125)
    assert quantile([0] * len(LATENCY_BUCKETS), 0.5) is None


async def test_a_summary_counts_successes_errors_and_latency_of_the_successes() -> None:
    stats = RouteStats(MemoryStateStore(), clock=Clock())
    route = route_to(ScriptedBackend("v"))
    for _ in range(19):
        await stats.record(route, 1.1, ok=True)
    await stats.record(route, 25.0, ok=True)
    await stats.record(route, 0.01, ok=False)

    summary = await stats.summary(route)

    assert (summary.successes, summary.errors, summary.attempts) == (20, 1, 21)
    assert summary.error_rate == pytest.approx(1 / 21)
    assert summary.p50_s is not None and 1.0 < summary.p50_s <= 1.25
    assert summary.p95_s is not None and 1.0 < summary.p95_s <= 1.25
    assert summary.estimate_s is not None and 1.1 < summary.estimate_s < 3


async def test_the_estimate_weighs_recent_minutes_more_and_old_minutes_drop_out() -> None:
    clock = Clock()
    stats = RouteStats(MemoryStateStore(), clock=clock, windows=3)
    route = route_to(ScriptedBackend("v"))
    await stats.record(route, 4.5, ok=True)  # a slow minute...
    clock.now += 60
    await stats.record(route, 0.4, ok=True)  # ...then a fast one

    mixed = await stats.summary(route)
    clock.now += 120  # the slow minute leaves the view
    later = await stats.summary(route)

    assert mixed.estimate_s is not None and 0.45 < mixed.estimate_s < 2.5  # closer to the recent minute
    assert later.successes == 1 and later.estimate_s == pytest.approx(0.4)


async def test_replicas_sharing_a_store_read_one_record() -> None:
    store, clock = MemoryStateStore(), Clock()
    route = route_to(ScriptedBackend("v"))
    await RouteStats(store, clock=clock).record(route, 0.3, ok=True)
    await RouteStats(store, clock=clock).record(route, 0.3, ok=False)

    assert (await RouteStats(store, clock=clock).summary(route)).attempts == 2


async def test_the_board_rereads_the_store_only_after_its_refresh_time() -> None:
    store, clock = MemoryStateStore(), Clock()
    stats = RouteStats(store, clock=clock)
    route = route_to(ScriptedBackend("v"))
    board = LatencyBoard(stats, refresh_s=3600)

    first = await board.summaries([route])
    await stats.record(route, 0.3, ok=True)
    cached = await board.summaries([route])
    board.refresh_s = 0
    fresh = await board.summaries([route])

    assert first[route.key].attempts == cached[route.key].attempts == 0
    assert fresh[route.key].attempts == 1
