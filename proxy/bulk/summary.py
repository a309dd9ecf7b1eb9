"""What a bulk run did: counts, failures, what it cost, who served it, how fast.

Latency percentiles are over the prompts generated in this run (not the skipped ones, nor the
replays), nearest-rank. The exit code says how the run went: ``EXIT_OK`` when every prompt is done
(now or by an earlier run), ``EXIT_PARTIAL`` when some failed and some are done,
``EXIT_ALL_FAILED`` when none is done; ``EXIT_USAGE`` is a command or prompts file refused
before anything was sent, or an output directory that cannot be used.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from rich.table import Table

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_ALL_FAILED = 4
EXIT_INTERRUPTED = 130


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclass(slots=True)
class RunSummary:
    prompts: int = 0
    served: int = 0
    skipped: int = 0
    replayed: int = 0
    failures: list[str] = field(default_factory=list)
    images: int = 0
    cost_usd: Decimal = Decimal(0)
    vendors: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if not self.failures:
            return EXIT_OK
        return EXIT_PARTIAL if self.served + self.skipped else EXIT_ALL_FAILED

    def as_json(self) -> dict[str, Any]:
        p50, p95 = percentile(self.latencies_s, 0.5), percentile(self.latencies_s, 0.95)
        return {
            "prompts": self.prompts, "served": self.served, "skipped": self.skipped,
            "replayed": self.replayed, "failed": len(self.failures), "images": self.images,
            "cost_usd": str(self.cost_usd), "vendors": dict(sorted(self.vendors.items())),
            "latency_p50_s": None if p50 is None else round(p50, 3),
            "latency_p95_s": None if p95 is None else round(p95, 3),
            "failures": self.failures, "exit_code": self.exit_code,
        }

    def table(self) -> Table:
        summary = self.as_json()
        table = Table(title="boltgate generate", show_header=False)
        table.add_column("what", style="bold")
        table.add_column("value")
        table.add_row("prompts", str(self.prompts))
        table.add_row("served", f"{self.served} ({self.replayed} replayed free)")
        table.add_row("skipped (already written)", str(self.skipped))
        table.add_row("failed", str(len(self.failures)), style="red" if self.failures else None)
        table.add_row("images written", str(self.images))
        table.add_row("total cost", f"${self.cost_usd:.6f}")
        mix = ", ".join(f"{vendor} {count}" for vendor, count in self.vendors.most_common()) or "-"
        table.add_row("vendor mix", mix)
        for name in ("p50", "p95"):
            value = summary[f"latency_{name}_s"]
            table.add_row(f"latency {name}", "-" if value is None else f"{value:.3f} s")
        return table
