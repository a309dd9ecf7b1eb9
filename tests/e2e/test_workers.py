"""``boltgate serve --workers 2``: two real worker processes on one port, over real HTTP.

They share the embedded SQLite store, so a key's budget is never overspent whichever worker a
request reaches, a key the admin API creates on one is honoured by the other, and ``/metrics``
sums both. Which worker served what is read from each worker's own metrics file (the run's
``PROMETHEUS_MULTIPROC_DIR``), so each test first makes sure both really served.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from backends.simulators import Fault, SimulatorConfig, SimulatorServer
from proxy.serving.listening import bind
from tests.e2e.conftest import KEY_ENV, SIM_KEY, StartSimulator
from tests.e2e.gateway_process import REPO, GatewayProcess
from tests.e2e.worker_processes import live_workers, served_by_worker

BODY = {"model": "sdxl-lightning", "prompt": "a red kite", "size": "256x256", "response_format": "b64_json"}
ADMIN = {"Authorization": "Bearer adm"}
"""The admin token: it also opens ``/metrics``, private once client keys are required."""
ENOUGH_TRIES = 200
"""New connections made until both workers have served one (each lands on one at random)."""


def route_settings(sim: SimulatorServer) -> dict[str, object]:
    return {"vendor": sim.vendor, "key_env": KEY_ENV, "regions": [{"name": "r1", "base_url": sim.base_url}]}


def generations_at(sim: SimulatorServer) -> int:
    """The generations the vendor received: not the prober's requests, which come when they will."""
    return sum(1 for recorded in sim.requests if recorded.method == "POST")


def until_both_served(base_url: str, metrics_dir: Path, headers: dict[str, str]) -> int:
    """Requests, each on a new connection, until both workers answered one; how many it took."""
    for sent in range(1, ENOUGH_TRIES + 1):
        answer = httpx.post(f"{base_url}/v1/images/generations", json=BODY, headers=headers, timeout=30)
        assert answer.status_code == 200, answer.text
        if len([count for count in served_by_worker(metrics_dir).values() if count > 0]) == 2:
            return sent
    raise AssertionError(f"{ENOUGH_TRIES} new connections all reached the same worker")


def settled(metrics_dir: Path) -> dict[int, float]:
    """Per-worker counts once they stop changing: a request is counted just after its answer leaves."""
    previous = served_by_worker(metrics_dir)
    give_up = time.monotonic() + 10
    while time.monotonic() < give_up:
        time.sleep(0.3)
        now = served_by_worker(metrics_dir)
        if now == previous:
            return now
        previous = now
    raise AssertionError("the workers' counts kept changing")


def metric_value(text: str, line_start: str) -> float:
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start)]
    assert len(values) == 1, (line_start, text)
    return values[0]


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayProcess, Path]]:
    """One two-worker gateway for the module (starting one takes seconds); each test uses its own key."""
    tmp_path = tmp_path_factory.mktemp("workers")
    sim = SimulatorServer("aigateway", SimulatorConfig(api_key=SIM_KEY, latency_s=0.05)).start()
    metrics_dir = tmp_path / "metrics"
    settings: dict[str, object] = {
        "routes": [route_settings(sim)], "data_dir": str(tmp_path / "data"), "admin_token": "adm",
        "api_keys": {"bg-shared": {"name": "shared", "budget_credits": "100"}},
    }
    try:
        with GatewayProcess(settings, tmp_path / "gateway.log", args=["--workers", "2"],
                            env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), KEY_ENV: SIM_KEY}) as server:
            yield server, metrics_dir
    finally:
        sim.stop()


def test_concurrent_requests_on_one_key_never_overspend_across_two_workers(
    two_workers: tuple[GatewayProcess, Path],
) -> None:
    server, metrics_dir = two_workers
    admin = {"Authorization": "Bearer adm"}
    price = Decimal("0.001080")  # aigateway: $0.0008 + 35%
    created = httpx.post(f"{server.base_url}/v1/admin/keys", headers=admin, timeout=10,
                         json={"name": "team", "budget_credits": str(price * 5 / Decimal("0.01"))}).json()
    key = {"Authorization": f"Bearer {created['key']}"}
    warmup = until_both_served(server.base_url, metrics_dir, {"Authorization": "Bearer bg-shared"})
    before = settled(metrics_dir)

    async def burst() -> list[httpx.Response]:
        async def one() -> httpx.Response:  # a client per request: a new connection each
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30, headers=key) as client:
                return await client.post("/v1/images/generations", json=BODY)
        return await asyncio.gather(*(one() for _ in range(40)))

    responses = asyncio.run(burst())
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 5 + [402] * 35, [r.text for r in responses if r.status_code not in (200, 402)]
    spent = httpx.get(f"{server.base_url}/v1/usage", headers=key, timeout=10).json()["spent_usd"]
    assert Decimal(str(spent)) == price * 5
    assert sum(settled(metrics_dir).values()) - sum(before.values()) == 5
    assert sum(served_by_worker(metrics_dir, status="402").values()) == 35  # the only 402s of the module
    assert warmup >= 1


def test_a_key_created_through_one_worker_is_honoured_by_both(two_workers: tuple[GatewayProcess, Path]) -> None:
    server, metrics_dir = two_workers
    created = httpx.post(f"{server.base_url}/v1/admin/keys", json={"name": "new", "budget_credits": "100"},
                         headers={"Authorization": "Bearer adm"}, timeout=10)
    assert created.status_code == 201, created.text
    # Every request below uses the new key; both workers must answer at least one with 200.
    until_both_served(server.base_url, metrics_dir, {"Authorization": f"Bearer {created.json()['key']}"})


def test_metrics_sum_both_workers(two_workers: tuple[GatewayProcess, Path]) -> None:
    server, metrics_dir = two_workers
    until_both_served(server.base_url, metrics_dir, {"Authorization": "Bearer bg-shared"})
    per_worker = settled(metrics_dir)
    assert len(per_worker) == 2 and all(count > 0 for count in per_worker.values())
    for _ in range(6):  # each scrape is a new connection, answered by either worker: the same sum
        text = httpx.get(f"{server.base_url}/metrics", headers=ADMIN, timeout=10).text
        assert metric_value(text, 'boltgate_requests_total{endpoint="generations",status="200"}') == sum(
            per_worker.values())
        assert metric_value(text, 'boltgate_request_seconds_count{endpoint="generations"}') >= sum(
            per_worker.values())  # histograms sum too (the 402s of another test count as well)
        assert metric_value(text, "boltgate_workers ") == 2
        assert 'boltgate_build_info{' in text and "process_cpu_seconds_total " in text
        assert metric_value(text, "boltgate_requests_in_flight ") == 0


def test_a_dead_worker_is_replaced_and_its_counts_kept(two_workers: tuple[GatewayProcess, Path]) -> None:
    """Last of the module's tests on the shared gateway: it kills one of its workers."""
    server, metrics_dir = two_workers
    until_both_served(server.base_url, metrics_dir, {"Authorization": "Bearer bg-shared"})
    sent = sum(settled(metrics_dir).values())
    victim = min(served_by_worker(metrics_dir))
    subprocess.run(["kill", "-9", str(victim)], check=True)
    give_up = time.monotonic() + 60
    while True:
        text = httpx.get(f"{server.base_url}/metrics", headers=ADMIN, timeout=10).text
        if metric_value(text, "boltgate_workers ") == 2 and not Path(f"/proc/{victim}").exists():
            break
        assert time.monotonic() < give_up, "no worker replaced the killed one"
        time.sleep(0.2)
    assert metric_value(text, 'boltgate_requests_total{endpoint="generations",status="200"}') == sent


def test_sigterm_drains_requests_in_flight_on_every_worker(simulator: StartSimulator, tmp_path: Path) -> None:
    sim = simulator("aigateway")
    metrics_dir = tmp_path / "metrics"
    settings: dict[str, object] = {"routes": [route_settings(sim)], "data_dir": str(tmp_path / "data")}
    with GatewayProcess(settings, tmp_path / "gateway.log", args=["--workers", "2"],
                        env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}) as server:
        until_both_served(server.base_url, metrics_dir, {})  # both workers are up, not only the first
        sim.inject(Fault(kind="latency", seconds=2.0, times=8))
        already = generations_at(sim)
        answers: list[int] = []

        def one() -> None:
            answers.append(httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, timeout=30).status_code)

        clients = [threading.Thread(target=one) for _ in range(8)]
        for client in clients:
            client.start()
        give_up = time.monotonic() + 30
        while generations_at(sim) < already + 8:  # every request reached the vendor: all are in flight
            assert time.monotonic() < give_up, server.log()
            time.sleep(0.02)
        server.terminate()
        for client in clients:
            client.join(timeout=30)
        assert answers == [200] * 8, server.log()
        assert server.wait(timeout=30) in (0, -signal.SIGTERM), server.log()
        assert server.log().count("Application shutdown complete") == 2, server.log()


def test_workers_whose_supervisor_is_killed_finish_their_requests_in_flight_and_free_the_port(
        simulator: StartSimulator, tmp_path: Path) -> None:
    """The supervisor alone SIGKILLed (the OOM killer, a stray ``kill -9``): its workers must not
    serve on unsupervised. Each drains as on SIGTERM (the request in flight is answered) and
    exits, and the port is free for the next ``boltgate serve``."""
    sim = simulator("aigateway")
    metrics_dir = tmp_path / "metrics"
    settings: dict[str, object] = {"routes": [route_settings(sim)], "data_dir": str(tmp_path / "data")}
    server = GatewayProcess(settings, tmp_path / "gateway.log", args=["--workers", "2"],
                            env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}).start()
    workers: set[int] = set()
    try:
        until_both_served(server.base_url, metrics_dir, {})  # both workers are up, not only the first
        workers = live_workers(server.pid)
        assert len(workers) == 2, server.log()
        sim.inject(Fault(kind="latency", seconds=2.0, times=1))
        already = generations_at(sim)
        answers: list[int] = []
        client = threading.Thread(target=lambda: answers.append(httpx.post(
            f"{server.base_url}/v1/images/generations", json=BODY, timeout=30).status_code))
        client.start()
        give_up = time.monotonic() + 30
        while generations_at(sim) == already:  # the request reached the vendor: it is in flight
            assert time.monotonic() < give_up, server.log()
            time.sleep(0.02)

        server.kill()  # SIGKILL to the supervisor alone (not its process group): the workers live on

        client.join(timeout=30)
        assert answers == [200], server.log()
        give_up = time.monotonic() + 30  # a drain is bounded by the deadline; an idle one is quick
        while alive := {pid for pid in workers if is_running(pid)}:
            assert time.monotonic() < give_up, f"workers {alive} still run without their supervisor"
            time.sleep(0.05)
        assert server.log().count("Application shutdown complete") == 2, server.log()  # drained, not killed
        for sock in bind("127.0.0.1", server.port):  # as the next ``boltgate serve`` binds it
            sock.close()
    finally:
        for pid in workers:  # none, unless the test failed: never leave orphans serving
            if is_running(pid):
                os.kill(pid, signal.SIGKILL)
        server.stop()


def is_running(pid: int) -> bool:
    """Alive and not a zombie (an orphan that exited waits for its new parent to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def test_the_memory_store_refuses_two_workers_with_a_clear_message(tmp_path: Path) -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "proxy", "serve", "--port", "0", "--workers", "2"], cwd=REPO, timeout=60,
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO),
                                             "BOLTGATE_STATE_BACKEND": "memory"},
    )
    assert finished.returncode == 2
    assert "--workers 2 needs state the processes share" in finished.stderr
    assert "'sqlite'" in finished.stderr and "'redis'" in finished.stderr


def test_a_port_already_taken_is_said_plainly(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        finished = subprocess.run(
            [sys.executable, "-m", "proxy", "serve", "--port", str(port), "--workers", "2"], cwd=REPO, timeout=60,
            capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO),
                                                 "BOLTGATE_DATA_DIR": str(tmp_path / "data")},
        )
    assert finished.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in finished.stderr, finished.stderr
