"""The worker processes of a ``boltgate serve --workers N`` under test: which are alive (from
``/proc``), and which served what (from each worker's own metrics file).

A test that kills one worker needs its pid, and one that says "both workers served" needs a count
per worker; the supervisor publishes neither, so both are read the way an operator would.
"""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.multiprocess import MultiProcessCollector

SPAWNED = b"multiprocessing.spawn"
"""In a worker's command line (``spawn``: a fresh interpreter running ``spawn_main``); the
supervisor's other child, multiprocessing's resource tracker, runs ``resource_tracker`` instead."""


def live_workers(supervisor: int) -> set[int]:
    """The supervisor's worker processes that are alive (a killed one not yet reaped is not)."""
    children: set[int] = set()
    for task in Path(f"/proc/{supervisor}/task").glob("*"):
        try:
            children.update(int(pid) for pid in (task / "children").read_text().split())
        except OSError:  # the task ended meanwhile
            continue
    return {pid for pid in children if _is_live_worker(pid)}


def _is_live_worker(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, IndexError):
        return False
    return state != "Z" and SPAWNED in command and b"resource_tracker" not in command


def served_by_worker(metrics_dir: Path, status: str | None = "200") -> dict[int, float]:
    """Image requests answered with ``status`` (any, for None), per worker pid, from each worker's
    own file."""
    counts: dict[int, float] = {}
    for path in metrics_dir.glob("counter_*.db"):
        pid = int(re.findall(r"\d+", path.name)[-1])
        for metric in MultiProcessCollector.merge([str(path)]):  # type: ignore[no-untyped-call]
            for sample in metric.samples:
                if sample.name == "boltgate_requests_total" and status in (None, sample.labels.get("status")):
                    counts[pid] = counts.get(pid, 0.0) + sample.value
    return counts
