"""Every series a Grafana dashboard queries is one the app exports.

A metric family exports fixed series names: a counter ``x`` is scraped as ``x_total``, a histogram
``x`` as ``x_bucket``/``x_sum``/``x_count``, a gauge as ``x``. So the check is exact: a panel on
``boltgate_request_seconds`` (no such series) or ``boltgate_requests`` fails, as it would in Grafana.

The worker's metrics (``backends/local/worker_metrics.py``) are checked against the names below
and, when that module imports, against its registry as well.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from proxy.metrics import REGISTRY
from tests.promql_series import exported_series, metric_names, worker_registry_series

GRAFANA = Path(__file__).resolve().parents[1] / "grafana"
DASHBOARDS = sorted(GRAFANA.glob("*.json"))

WORKER_SERIES = {
    "boltgate_worker_queue_depth",
    "boltgate_worker_batch_size_bucket", "boltgate_worker_batch_size_sum", "boltgate_worker_batch_size_count",
    "boltgate_worker_images_total",
    "boltgate_worker_gpu_seconds_total",
    "boltgate_worker_gpu_memory_bytes",
    "boltgate_worker_images_per_second",
    "boltgate_worker_queue_rejections_total",
    "boltgate_worker_requests_total",
    "boltgate_worker_ready",
    "boltgate_worker_request_seconds_bucket", "boltgate_worker_request_seconds_sum",
    "boltgate_worker_request_seconds_count",
    "boltgate_worker_queue_wait_seconds_bucket", "boltgate_worker_queue_wait_seconds_sum",
    "boltgate_worker_queue_wait_seconds_count",
}

def label_values_metric(query: str) -> set[str]:
    """The metric a ``label_values(metric, label)`` template variable reads, if any."""
    match = re.match(r"\s*label_values\(\s*([A-Za-z_:][\w:]*)\s*(?:\{[^}]*\})?\s*,", query)
    return {match.group(1)} if match else set()


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queried_series(dashboard: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            names |= metric_names(target["expr"])
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            names |= label_values_metric(query.get("query", ""))
    return names


def load(path: Path) -> dict[str, Any]:
    loaded = json.loads(path.read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_the_extractor_finds_metric_names_and_ignores_promql_syntax() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, backend) (rate(boltgate_backend_attempt_seconds_bucket'
        '{backend=~"$backend", outcome!="ok"}[$__rate_interval]))) / ignoring(le) group_left '
        "sum(boltgate_requests_in_flight offset 5m) * 3600 > bool 0"
    )
    assert metric_names(expr) == {"boltgate_backend_attempt_seconds_bucket", "boltgate_requests_in_flight"}
    assert metric_names('sum(increase(a_total[$__range])) - on(backend) b_total{x="sum(c)"}') == {"a_total", "b_total"}
    assert label_values_metric("label_values(boltgate_worker_queue_depth, instance)") == {
        "boltgate_worker_queue_depth"
    }


def test_exported_series_follow_each_metric_type() -> None:
    series = exported_series(REGISTRY)
    assert {"boltgate_requests_total", "boltgate_request_seconds_bucket", "boltgate_request_seconds_count",
            "boltgate_requests_in_flight"} <= series
    assert "boltgate_requests" not in series
    assert "boltgate_request_seconds" not in series


def test_there_is_a_gateway_and_a_worker_dashboard() -> None:
    assert {path.name for path in DASHBOARDS} >= {"boltgate-gateway.json", "boltgate-worker.json"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_dashboard_is_well_formed(path: Path) -> None:
    dashboard = load(path)
    assert dashboard["uid"] and dashboard["title"]
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    variables = {variable["name"] for variable in dashboard["templating"]["list"]}
    assert "datasource" in variables
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["targets"], f"panel {panel['title']!r} queries nothing"
        assert panel["datasource"]["uid"] == "${datasource}"
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), f"panel {panel['title']!r} repeats a refId"


def test_the_gateway_dashboard_queries_only_what_the_gateway_exports() -> None:
    queried = queried_series(load(GRAFANA / "boltgate-gateway.json"))
    assert queried, "no queries found"
    assert not queried - exported_series(REGISTRY), "dashboard queries series the gateway does not export"


def test_the_gateway_dashboard_shows_overhead_apart_from_backend_time() -> None:
    queried = queried_series(load(GRAFANA / "boltgate-gateway.json"))
    assert {"boltgate_gateway_overhead_seconds_bucket", "boltgate_backend_attempt_seconds_bucket"} <= queried


def test_the_worker_dashboard_queries_only_the_worker_metrics() -> None:
    queried = queried_series(load(GRAFANA / "boltgate-worker.json"))
    assert queried, "no queries found"
    assert not queried - WORKER_SERIES, "dashboard queries series the worker is not meant to export"
    exported = worker_registry_series()
    assert not queried - exported, "dashboard queries series backends.local.worker_metrics does not export"


def test_the_worker_module_exports_every_series_this_test_expects() -> None:
    exported = worker_registry_series()
    assert exported >= WORKER_SERIES, f"missing from the worker: {sorted(WORKER_SERIES - exported)}"


def test_every_dashboard_series_belongs_to_the_gateway_or_the_worker() -> None:
    known = exported_series(REGISTRY) | WORKER_SERIES
    for path in DASHBOARDS:
        unknown = queried_series(load(path)) - known
        assert not unknown, f"{path.name} queries unknown series {sorted(unknown)}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.stem)
def test_every_query_is_scoped_to_the_chosen_environment(path: Path) -> None:
    dashboard = load(path)
    variables = {variable["name"] for variable in dashboard["templating"]["list"]}
    assert {"namespace", "job", "pod"} <= variables
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            for name in metric_names(target["expr"]):
                selectors = re.findall(rf"\b{name}\{{([^}}]*)\}}", target["expr"])
                assert selectors, f"{panel['title']!r}: {name} has no label matchers"
                for selector in selectors:
                    for label in ("namespace", "job", "pod"):
                        assert f'{label}=~"${label}"' in selector, f"{panel['title']!r}: {name} ignores ${label}"


def test_the_gateway_dashboard_shows_each_region_and_every_percentile() -> None:
    exprs = [target["expr"] for panel in panels(load(GRAFANA / "boltgate-gateway.json"))
             for target in panel.get("targets", [])]
    per_region = [e for e in exprs if "boltgate_backend_attempt_seconds_bucket" in e and "region" in e]
    assert {q for e in per_region for q in ("0.5", "0.95", "0.99") if f"histogram_quantile({q}," in e} == {
        "0.5", "0.95", "0.99"}
