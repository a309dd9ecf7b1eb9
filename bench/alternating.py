"""Two gateways (a baseline checkout and this one) loaded in alternating rounds, and compared by
the median of the rounds' ratios: on a shared machine two runs minutes apart differ by 20-40%,
so only what is measured side by side, round by round, means much. Used by
``bench/overhead_ab.py`` (generations) and ``bench/downloads.py`` (image downloads)."""

from __future__ import annotations

import os
import statistics
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from loadclient import run_load
from overhead import HOST, cpu_seconds

Gateways = dict[str, tuple[subprocess.Popen[bytes], int]]
"""By name ("baseline", "this"): the process and its port."""


@dataclass
class Rounds:
    """Per gateway, one figure per round: CPU ms per answer, p50 and p99 latency in ms."""

    cpu: dict[str, list[float]] = field(default_factory=dict)
    p50: dict[str, list[float]] = field(default_factory=dict)
    p99: dict[str, list[float]] = field(default_factory=dict)
    direct_p50: list[float] = field(default_factory=list)
    """The upstream's own p50 each round, loaded directly (when asked for): what the gateways add."""

    def ratio(self, figures: dict[str, list[float]]) -> float:
        """Median over the rounds of this / baseline."""
        return statistics.median(this / base for base, this in zip(figures["baseline"], figures["this"], strict=True))

    def added_p50(self) -> dict[str, list[float]]:
        """Per gateway and round, its p50 less the upstream's own in that round."""
        return {name: [p50 - direct for p50, direct in zip(runs, self.direct_p50, strict=True)]
                for name, runs in self.p50.items()}


async def warm_up(gateways: Gateways, requests: dict[str, bytes], *, concurrency: int, seconds: float) -> None:
    """Load each gateway once, unmeasured: connections, caches and its first answers made."""
    for name, (_, port) in gateways.items():
        await run_load(HOST, port, requests[name], concurrency=concurrency, seconds=seconds)


async def alternate(gateways: Gateways, requests: dict[str, bytes], *, concurrency: int, rounds: int,
                    seconds: float, direct: tuple[int, bytes] | None = None) -> Rounds:
    """Each round loads every gateway with its request for ``seconds`` (the order alternating
    between rounds), its CPU time (``/proc/PID/stat``) divided by the answers; prints each round.
    With ``direct`` (the upstream's port and a request for it), each round first loads the
    upstream itself, so that what each gateway adds to its p50 is known round by round."""
    measured = Rounds({name: [] for name in gateways}, {name: [] for name in gateways}, {name: [] for name in gateways})
    for index in range(rounds):
        if direct is not None:
            run = await run_load(HOST, direct[0], direct[1], concurrency=concurrency, seconds=seconds)
            if run.errors:
                raise RuntimeError(f"direct: {run.errors} non-200 answers")
            measured.direct_p50.append(statistics.median(run.latencies) * 1000)
        order = list(gateways) if index % 2 == 0 else list(gateways)[::-1]
        for name in order:
            gateway, port = gateways[name]
            before = cpu_seconds(gateway.pid)
            run = await run_load(HOST, port, requests[name], concurrency=concurrency, seconds=seconds)
            if run.errors:
                raise RuntimeError(f"{name}: {run.errors} non-200 answers")
            measured.cpu[name].append((cpu_seconds(gateway.pid) - before) / max(1, len(run.latencies)) * 1000)
            measured.p50[name].append(statistics.median(run.latencies) * 1000)
            measured.p99[name].append(run.percentile(0.99) * 1000)
        print(f"round {index + 1:>2}: " + "   ".join(
            f"{name} {measured.cpu[name][-1]:.3f} (p50 {measured.p50[name][-1]:.2f}, "
            f"p99 {measured.p99[name][-1]:.1f} ms)" for name in gateways))
    return measured


def report(measured: Rounds, checkouts: dict[str, Path], unit: str) -> None:
    """The medians of each gateway, then the medians of the rounds' ratios."""
    print(f"load average {os.getloadavg()[0]:.2f}")
    for name, path in checkouts.items():
        print(f"{name:>8} ({path}): median {statistics.median(measured.cpu[name]):.3f} ms/{unit}, "
              f"p50 latency {statistics.median(measured.p50[name]):.3f} ms, "
              f"p99 {statistics.median(measured.p99[name]):.3f} ms")
    print(f"this / baseline, median of the rounds' ratios: {measured.ratio(measured.cpu):.3f}")
    print(f"p50 latency, this / baseline, median of the rounds' ratios: {measured.ratio(measured.p50):.3f}")
    print(f"p99 latency, this / baseline, median of the rounds' ratios: {measured.ratio(measured.p99):.3f}")
    if measured.direct_p50:
        added = measured.added_p50()
        print(f"added p50 (less the upstream's own, median {statistics.median(measured.direct_p50):.3f} ms): "
              + ", ".join(f"{name} {statistics.median(rounds):.3f} ms" for name, rounds in added.items()))
        print(f"added p50, this / baseline, median of the rounds' ratios: {measured.ratio(added):.3f}")
