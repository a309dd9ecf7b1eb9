"""How many workers ``--workers`` means, and which state backends may be shared by several."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from proxy.serving.workers import available_cpus, cpu_quota, parse_workers, refusal


def test_a_cgroup_quota_is_read_in_cpus(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")
    assert cpu_quota(cpu_max) == 1.5
    cpu_max.write_text("max 100000\n")
    assert cpu_quota(cpu_max) is None


def test_auto_is_the_affinity_capped_by_the_quota_rounded_up(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("50000 100000\n")  # half a CPU: still one worker
    assert available_cpus(cpu_max) == 1
    cpu_max.write_text("max 100000\n")
    assert available_cpus(cpu_max) == len(os.sched_getaffinity(0))
    cpu_max.write_text(f"{(len(os.sched_getaffinity(0)) + 8) * 100000} 100000\n")  # quota above the CPUs
    assert available_cpus(cpu_max) == len(os.sched_getaffinity(0))


def test_workers_are_a_positive_number_or_auto() -> None:
    assert parse_workers("3") == 3
    assert parse_workers(2) == 2
    assert parse_workers("auto") >= 1
    for bad in ("0", "-1", "many", "1.5"):
        with pytest.raises(ValueError, match="positive integer or 'auto'"):
            parse_workers(bad)


def test_only_the_memory_store_is_refused_for_several_workers() -> None:
    assert refusal("memory", 1) is None
    assert refusal("sqlite", 4) is None
    assert refusal("redis", 4) is None
    message = refusal("memory", 2)
    assert message is not None and "--workers 2" in message and "sqlite" in message
