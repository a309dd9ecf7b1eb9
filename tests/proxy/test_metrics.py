"""The gateway's registry: process and build facts for operators, no duplicate ``_created`` series."""

from __future__ import annotations

from prometheus_client import generate_latest

from proxy.metrics import REGISTRY, REQUESTS, labelled


def _scrape() -> str:
    labelled(REQUESTS, "generations", "200").inc(0)
    return generate_latest(REGISTRY).decode()


def test_process_metrics_say_how_much_memory_and_cpu_the_gateway_uses() -> None:
    text = _scrape()
    for series in ("process_resident_memory_bytes", "process_cpu_seconds_total", "process_start_time_seconds"):
        assert f"\n{series} " in text, series


def test_build_info_names_the_version_and_python() -> None:
    build = [line for line in _scrape().splitlines() if line.startswith("boltgate_build_info{")]
    assert len(build) == 1
    assert 'version="' in build[0] and 'python="3.' in build[0]
    assert build[0].endswith(" 1.0")


def test_no_created_twins_are_exported() -> None:
    assert "_created" not in _scrape()
