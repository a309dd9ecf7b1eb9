"""The summary's figures and the exit code that says how the run went."""

from __future__ import annotations

from decimal import Decimal

from rich.console import Console

from proxy.bulk.summary import EXIT_ALL_FAILED, EXIT_OK, EXIT_PARTIAL, RunSummary, percentile


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.95)) == (50.0, 95.0)
    assert percentile([3.0], 0.95) == 3.0 and percentile([], 0.5) is None


def test_the_exit_code_tells_all_done_from_some_failed_from_none_done() -> None:
    assert RunSummary(prompts=2, served=2).exit_code == EXIT_OK
    assert RunSummary(prompts=2, skipped=2).exit_code == EXIT_OK
    assert RunSummary(prompts=2, served=1, failures=["line 2: 400"]).exit_code == EXIT_PARTIAL
    assert RunSummary(prompts=2, skipped=1, failures=["line 2: 400"]).exit_code == EXIT_PARTIAL
    assert RunSummary(prompts=2, failures=["a", "b"]).exit_code == EXIT_ALL_FAILED


def test_the_table_shows_count_failures_cost_vendor_mix_and_latency() -> None:
    summary = RunSummary(prompts=4, served=3, failures=["line 4: 400 bad"], images=3,
                         cost_usd=Decimal("0.0120"), latencies_s=[1.0, 2.0, 3.0])
    summary.vendors.update({"runflow": 2, "eachlabs": 1})
    console = Console(width=100, record=True)
    console.print(summary.table())
    text = console.export_text()
    for shown in ("prompts", "4", "failed", "$0.012000", "runflow 2, eachlabs 1", "2.000 s", "3.000 s"):
        assert shown in text
    assert summary.as_json()["latency_p95_s"] == 3.0 and summary.as_json()["cost_usd"] == "0.0120"
