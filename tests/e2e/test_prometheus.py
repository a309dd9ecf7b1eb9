"""A real Prometheus scrapes a real gateway and a real GPU worker (tiny model) after real
traffic, and every dashboard panel and alert rule is evaluated through Prometheus's HTTP API.

A panel that queries nothing the running system exports stays empty in Grafana without any
error; this is the test that sees it. Panels that can only show data after a fault the traffic
here does not cause are listed in ``EXPECTED_EMPTY`` with the reason.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml  # type: ignore[import-untyped]

from proxy.settings import RegionConfig, RouteConfig
from tests.asgi_server import AsgiServer
from tests.e2e.conftest import RunningServers, StartGateway, StartSimulator, route_to
from tests.e2e.test_local_backend import StartWorker, fire, tiny_model, worker, worker_route  # noqa: F401
from tests.free_port import first_pick_taken, on_a_free_port, wait_until_started
from tests.promql_series import metric_names

pytestmark = pytest.mark.local

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "grafana").glob("*.json"))
RULES = ROOT / "helm" / "boltgate" / "files" / "boltgate.rules.yaml"
EXPECTED_EMPTY = {
    "boltgate_gateway_loss_usd_total": "needs a vendor that bills for a failed job (time-billed faults)",
    "boltgate_unconfirmed_charges_total": "needs a settle the state store does not confirm (store faults); "
                                          "its outcomes are labelled, so no series exists before one",
}
"""Series that only exist after a fault this traffic does not cause, and why."""
GRAFANA_VARIABLES = {"$__rate_interval": "30s", "$__range": "5m"}
START_TIMEOUT_S = 60.0


class Prometheus:
    """``prometheus`` from Debian's package on a loopback port, scraping every second; it logs to
    ``prometheus.log`` in ``workdir`` (a pipe nobody reads would block it once full)."""

    def __init__(self, workdir: Path, targets: dict[str, str]) -> None:
        binary = shutil.which("prometheus")
        assert binary, "prometheus missing: `make test` installs Debian's prometheus package"
        self.binary, self.workdir, self.log_path = binary, workdir, workdir / "prometheus.log"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [target]}]}
                               for job, target in targets.items()],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.process = on_a_free_port(self._start_on)  # the free port may be taken before it binds it

    def _start_on(self, port: int) -> subprocess.Popen[bytes]:
        """Prometheus on ``port`` once its log says it listens there (an HTTP answer could come from
        whoever took the port); ``PortTaken`` when it exited on a failed bind."""
        self.port, self.url = port, f"http://127.0.0.1:{port}"
        logged_before = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            process = subprocess.Popen(
                [self.binary, f"--config.file={self.workdir / 'prometheus.yml'}",
                 f"--storage.tsdb.path={self.workdir / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                stdout=subprocess.DEVNULL, stderr=log)
        wait_until_started(process, port, ready=lambda: 'msg="Listening on"' in self._logged_since(logged_before),
                           output=lambda: self._logged_since(logged_before), name="Prometheus server",
                           timeout_s=START_TIMEOUT_S)
        return process

    def _logged_since(self, offset: int) -> str:
        return self.log_path.read_bytes()[offset:].decode(errors="replace")

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10).json()
        assert answer["status"] == "success", f"{expr}: {answer}"
        return list(answer["data"]["result"])

    def ready(self) -> bool:
        """Prometheus answers its API with 503 until its storage has started."""
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=10).status_code == 200
        except httpx.TransportError:
            return False

    def wait_until(self, expr: str, timeout: float = 30) -> None:
        give_up = time.monotonic() + timeout
        while True:
            if self.ready() and self.query(expr):
                return
            assert time.monotonic() < give_up, f"no data for {expr}"
            time.sleep(0.25)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


StartPrometheus = Callable[[Path, dict[str, str]], Prometheus]


@pytest.fixture
def prometheus(running_servers: RunningServers) -> StartPrometheus:
    """Start Prometheus (stopped after the test, with the servers it scrapes)."""

    def start(workdir: Path, targets: dict[str, str]) -> Prometheus:
        return running_servers.add(Prometheus(workdir, targets))

    return start


def _concrete(expr: str) -> str:
    """A dashboard expression as Grafana would send it, with every variable set to 'all'."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return re.sub(r"\$[A-Za-z_]+", ".*", expr)


def _dashboard_queries() -> list[tuple[str, str, str]]:
    queries = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                queries.append((path.stem, panel["title"], target["expr"]))
    return queries


@pytest.fixture
def unused_port() -> Iterator[int]:
    """A port bound but not listening for the whole test: connecting is refused, and no other
    process (a server another xdist worker starts) can take it meanwhile and answer instead."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


def _dead_route(port: int) -> RouteConfig:
    """A vendor region nobody listens on: every request fails over from it."""
    return RouteConfig(vendor="callmissed", key_env="BOLTGATE_E2E_SIM_KEY", priority=0, max_attempts=1,
                       regions=[RegionConfig(name="down", base_url=f"http://127.0.0.1:{port}")])


def test_every_dashboard_panel_and_alert_reads_data_a_real_prometheus_scraped(
    worker: StartWorker, gateway: StartGateway, simulator: StartSimulator,  # noqa: F811
    prometheus: StartPrometheus, unused_port: int, tmp_path: Path,
) -> None:
    gpu: AsgiServer = worker(batch_window_ms=0, max_batch_size=1, max_queue=1)
    vendor = simulator("callmissed")
    server = gateway(_dead_route(unused_port), worker_route(gpu, priority=1), route_to(vendor, priority=2))
    scraper = prometheus(tmp_path, {"boltgate-gateway": server.url.removeprefix("http://"),
                                    "boltgate-worker": gpu.url.removeprefix("http://")})
    scraper.wait_until('count(up == 1) == 2')

    # Two bursts: a labelled series appears with its first increment, and Prometheus computes no
    # rate from a series' first sample, so rates need a second burst after the first is scraped.
    first = fire(server.base_url, 8)
    scraper.wait_until('boltgate_images_total{backend="callmissed"}')
    scraper.wait_until('boltgate_images_total{backend="worker"}')
    responses = first + fire(server.base_url, 8)
    assert [r.status_code for r in responses] == [200] * 16
    assert {r.headers["x-boltgate-backend"] for r in responses} == {"worker", "callmissed"}
    scraper.wait_until("sum(increase(boltgate_images_total[30s])) > 0")
    scraper.wait_until("sum(increase(boltgate_worker_queue_rejections_total[30s])) > 0")

    empty = []
    for dashboard, title, expr in _dashboard_queries():
        if metric_names(expr) & set(EXPECTED_EMPTY):
            continue
        if not scraper.query(_concrete(expr)):
            empty.append(f"{dashboard} / {title}: {expr}")
    assert empty == []

    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            scraper.query(rule["expr"])  # Prometheus accepts it (a healthy system may fire nothing)
            for name in metric_names(rule["expr"]) - set(EXPECTED_EMPTY):
                assert scraper.query(name), f"{rule['alert']} reads {name}, which has no data"
    loaded = httpx.get(f"{scraper.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    assert sum(len(group["rules"]) for group in loaded) == sum(len(g["rules"]) for g in rules["groups"])


def test_a_port_taken_before_prometheus_binds_it_is_replaced_by_another(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    with first_pick_taken(monkeypatch) as taken:  # another process took it between the pick and the bind

        scraper = Prometheus(tmp_path, {})
        try:
            assert scraper.port != taken
            scraper.wait_until("vector(1)")
        finally:
            scraper.stop()
    assert "address already in use" in scraper.log_path.read_text()  # the first start failed on the bind
