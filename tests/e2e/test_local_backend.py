"""The self-hosted backend end to end: the GPU worker service behind the gateway (batching,
a full queue failing over to a vendor, a killed worker taken out of rotation) and the
pipeline run in process. All on the tiny SDXL-shaped model, loaded through the real loader."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import torch

from backends.local.config import LocalBackendConfig
from backends.local.tiny import make_tiny_model
from backends.local.worker_app import create_worker_app
from proxy.settings import RegionConfig, RouteConfig
from tests.asgi_server import AsgiServer
from tests.e2e.conftest import RunningServers, StartGateway, StartSimulator, route_to
from tests.torch_threads import TORCH_THREADS

torch.set_num_threads(TORCH_THREADS)
pytestmark = pytest.mark.local

BODY = {"prompt": "a lighthouse at dusk", "size": "256x256", "steps": 1, "response_format": "b64_json"}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-e2e"))


def worker_config(model: Path, **fields: object) -> LocalBackendConfig:
    return LocalBackendConfig.model_validate({"model_dir": model, "preload_steps": (1,), "warmup_sizes": "256x256",
                                              **fields})


StartWorker = Callable[..., AsgiServer]


@pytest.fixture
def worker(tiny_model: Path, running_servers: RunningServers) -> StartWorker:
    """Start a GPU worker service on the tiny model; returns once it reports ready."""

    def start(**fields: object) -> AsgiServer:
        app = create_worker_app(worker_config(tiny_model, **fields))
        server = running_servers.add(AsgiServer(app, name="worker").start())
        give_up = time.monotonic() + 60
        while httpx.get(f"{server.url}/readyz").status_code != 200:
            assert time.monotonic() < give_up, "the worker never became ready"
            time.sleep(0.05)
        return server

    return start


def worker_route(server: AsgiServer, **fields: object) -> RouteConfig:
    return RouteConfig(vendor="worker", regions=[RegionConfig(name="gpu-a", base_url=server.url)],
                       **fields)  # type: ignore[arg-type]


def fire(base_url: str, count: int) -> list[httpx.Response]:
    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
            return await asyncio.gather(*(client.post("/v1/images/generations", json={**BODY, "seed": seed})
                                          for seed in range(count)))

    return asyncio.run(burst())


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} ([0-9.e+]+)$", text, re.MULTILINE)
    assert match, f"{name} not exported"
    return float(match.group(1))


def test_concurrent_requests_through_the_gateway_are_batched_by_the_worker(worker: StartWorker,
                                                                         gateway: StartGateway) -> None:
    gpu = worker(batch_window_ms=300, max_batch_size=4)
    server = gateway(worker_route(gpu))

    responses = fire(server.base_url, 4)

    assert [r.status_code for r in responses] == [200] * 4
    assert {r.headers["x-boltgate-backend"] for r in responses} == {"worker"}
    metrics = httpx.get(f"{gpu.url}/metrics").text
    batches = metric(metrics, "boltgate_worker_batch_size_count")
    images = metric(metrics, "boltgate_worker_batch_size_sum")
    assert images == 4  # every image went through a batch
    assert batches < images  # ... and at least two were merged into one pipeline call
    # The local route is priced by GPU-second (the worker reports them).
    assert all(float(r.headers["x-boltgate-upstream-cost-usd"]) > 0 for r in responses)


def test_a_full_worker_queue_fails_over_to_a_vendor(worker: StartWorker, gateway: StartGateway,
                                                    simulator: StartSimulator) -> None:
    gpu = worker(batch_window_ms=0, max_batch_size=1, max_queue=1)
    vendor = simulator("callmissed")
    server = gateway(worker_route(gpu, priority=1), route_to(vendor, priority=2))

    responses = fire(server.base_url, 8)

    assert [r.status_code for r in responses] == [200] * 8
    served_by = [r.headers["x-boltgate-backend"] for r in responses]
    assert "worker" in served_by
    assert "callmissed" in served_by  # refused with 503 + Retry-After, served elsewhere at once
    assert len(vendor.requests) == served_by.count("callmissed")


def test_a_killed_worker_is_taken_out_of_rotation(worker: StartWorker, gateway: StartGateway,
                                                  simulator: StartSimulator) -> None:
    gpu = worker()
    vendor = simulator("callmissed")
    server = gateway(worker_route(gpu, priority=1, max_attempts=1), route_to(vendor, priority=2),
                     breaker={"failure_threshold": 1, "open_s": 60})
    assert httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, timeout=60).headers[
        "x-boltgate-backend"] == "worker"

    gpu.stop()
    first = httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, timeout=60)
    second = httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, timeout=60)

    assert first.status_code == second.status_code == 200
    assert first.headers["x-boltgate-backend"] == second.headers["x-boltgate-backend"] == "callmissed"
    assert first.headers["x-boltgate-attempts"] == "2"  # the dead worker, then the vendor
    assert second.headers["x-boltgate-attempts"] == "1"  # circuit open: the worker is not tried
    assert 'boltgate_circuit_open{backend="worker",region="gpu-a"} 1.0' in httpx.get(
        f"{server.base_url}/metrics").text


def test_the_pipeline_runs_in_process_when_a_local_model_is_configured(tiny_model: Path,
                                                                      gateway: StartGateway) -> None:
    # The route ``local_model_dir`` adds (tests/proxy/test_settings.py), with the options of a CPU
    # test: warming every step count at the default 1024x1024 took minutes of the suite's time.
    server = gateway(RouteConfig(vendor="local", options={"model_dir": str(tiny_model), "preload_steps": "1",
                                                          "warmup_sizes": "256x256"}))
    # As a client would: wait until /readyz says the model is loaded and warmed, so the request's
    # own deadline is spent on the one image, not the load.
    give_up = time.monotonic() + 600
    while httpx.get(f"{server.base_url}/readyz").status_code != 200:
        assert time.monotonic() < give_up, "the in-process model never became ready"
        time.sleep(0.1)

    response = httpx.post(f"{server.base_url}/v1/images/generations",
                          json={**BODY, "output_format": "webp"}, timeout=120)

    assert response.status_code == 200, response.text
    assert (response.headers["x-boltgate-backend"], response.headers["x-boltgate-region"]) == ("local",
                                                                                              "in-process")
    assert response.json()["output_format"] == "webp"
