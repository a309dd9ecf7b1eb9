"""How many worker processes ``boltgate serve --workers`` starts, and whether the state allows it.

``auto`` is the CPUs this container may use: the CPUs the process may be scheduled on
(``os.sched_getaffinity``, which ``taskset`` and cpusets narrow) capped by the cgroup's CPU quota
(``cpu.max``, what a Kubernetes CPU limit sets), rounded up, at least 1.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
"""cgroup v2: ``"<quota> <period>"`` in microseconds, or ``"max <period>"`` for no limit."""
CGROUP_V1_QUOTA = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
CGROUP_V1_PERIOD = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")


def cpu_quota(cpu_max: Path = CGROUP_CPU_MAX) -> float | None:
    """The cgroup's CPU limit in CPUs (``1.5`` for ``150000 100000``), or None when unlimited or unknown."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return _cgroup_v1_quota()
    if quota == "max" or float(period) <= 0:
        return None
    return float(quota) / float(period)


def _cgroup_v1_quota() -> float | None:
    try:
        quota, period = int(CGROUP_V1_QUOTA.read_text()), int(CGROUP_V1_PERIOD.read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def available_cpus(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """The CPUs this process may use: its affinity mask, capped by the cgroup quota (rounded up)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = cpu_quota(cpu_max)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def parse_workers(value: str | int) -> int:
    """``"auto"`` as the available CPUs, a positive integer as itself; anything else is refused."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return available_cpus()
    try:
        count = int(value)
    except ValueError:
        raise ValueError(f"--workers takes a positive integer or 'auto', not {value!r}") from None
    if count < 1:
        raise ValueError(f"--workers takes a positive integer or 'auto', not {value!r}")
    return count


def refusal(state_backend: str, workers: int) -> str | None:
    """Why ``workers`` processes cannot share this state backend, or None when they can."""
    if workers > 1 and state_backend == "memory":
        return (f"--workers {workers} needs state the processes share: the in-memory state backend keeps "
                "keys, budgets and holds in each process, so every worker would spend the budget again. "
                "Use state_backend 'sqlite' (the embedded default, one file shared by the workers) or "
                "'redis', or run one worker.")
    return None
