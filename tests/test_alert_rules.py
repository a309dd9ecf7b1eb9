"""The alert rules ship once and hold: promtool accepts them, its unit tests pass, and every
series an alert reads is one the gateway or the worker exports (else the alert can never fire).

``promtool`` comes from Debian's ``prometheus`` package, which ``make test`` installs.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML (via litestar) ships no stubs

from proxy.metrics import REGISTRY
from tests.promql_series import exported_series, metric_names, worker_registry_series

ROOT = Path(__file__).resolve().parents[1]
RULES_SOURCE = ROOT / "helm" / "boltgate" / "files" / "boltgate.rules.yaml"
PLAIN_RULES = ROOT / "deploy" / "prometheus" / "boltgate.rules.yaml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "boltgate.rules.test.yaml"
SCRAPE_SERIES = {"up"}
"""Series Prometheus itself writes for every target."""


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool missing: `make test` installs Debian's prometheus package"
    return path


def rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load(RULES_SOURCE.read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def test_plain_prometheus_and_the_chart_read_the_same_file() -> None:
    assert PLAIN_RULES.resolve() == RULES_SOURCE.resolve()
    template = (ROOT / "helm" / "boltgate" / "templates" / "prometheusrule.yaml").read_text()
    assert '.Files.Get "files/boltgate.rules.yaml"' in template


def test_promtool_accepts_the_rules() -> None:
    run = subprocess.run([promtool(), "check", "rules", str(PLAIN_RULES)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"SUCCESS: {len(rules())} rules found" in run.stdout


def test_the_rules_unit_tests_pass() -> None:
    run = subprocess.run([promtool(), "test", "rules", RULE_TESTS.name], cwd=RULE_TESTS.parent,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_promtool_refuses_a_broken_rule(tmp_path: Path) -> None:
    broken = tmp_path / "broken.rules.yaml"
    broken.write_text("groups:\n  - name: x\n    rules:\n      - alert: X\n"
                      "        expr: sum(rate(boltgate_requests_total[5m]\n")
    run = subprocess.run([promtool(), "check", "rules", str(broken)], capture_output=True, text=True)
    assert run.returncode != 0


@pytest.mark.parametrize("rule", rules(), ids=lambda rule: rule["alert"])
def test_every_alert_reads_exported_series_and_has_a_runbook(rule: dict[str, Any]) -> None:
    known = exported_series(REGISTRY) | worker_registry_series() | SCRAPE_SERIES
    read = metric_names(rule["expr"])
    assert read, "the extractor found no series"
    assert not read - known, f"{rule['alert']} reads series nobody exports"
    assert rule["annotations"]["runbook"].strip()
    assert rule["labels"]["severity"] in {"page", "warn", "info"}


def test_the_vendor_down_runbook_says_a_refused_key_quarantines_the_vendor_account() -> None:
    """Quarantine is per vendor account (every region sharing its key), not per route
    (``proxy/routing/health.py``): an operator reading "the route" looks in the wrong place."""
    (rule,) = [rule for rule in rules() if rule["alert"] == "BoltgateVendorDown"]
    runbook = rule["annotations"]["runbook"]
    assert "quarantines the vendor account" in runbook
    assert "quarantines the route" not in runbook


def test_the_alerts_cover_what_operators_are_paged_for() -> None:
    names = {rule["alert"] for rule in rules()}
    assert {"BoltgateHighErrorRatio", "BoltgateVendorDown", "BoltgateWorkerNotReady",
            "BoltgateWorkerQueueFull", "BoltgateGatewayLossRate", "BoltgateStateStoreDegraded"} <= names


def test_a_job_runs_unconfirmed_charge_alerts() -> None:
    """A job run's charge the store did not confirm is taken back by the job's end, not by the
    voids ``BoltgateUnconfirmedChargesOwed`` watches, so only its counter tells an operator."""
    (rule,) = [rule for rule in rules() if rule["alert"] == "BoltgateJobRunChargeUnconfirmed"]
    assert "boltgate_unconfirmed_charges_total" in metric_names(rule["expr"])
    assert 'outcome="left_to_job"' in rule["expr"]
