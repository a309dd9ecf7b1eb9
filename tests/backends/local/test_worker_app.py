"""The GPU worker over HTTP: generate, refuse bad input, shed load with 503, export metrics."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence

import httpx
import pytest
from PIL import Image
from prometheus_client import CONTENT_TYPE_LATEST

from backends.base import sniff_format
from backends.local.config import LocalBackendConfig
from backends.local.worker_app import create_worker_app
from core.request import ImageRequest
from tests.backends.local.gated_pipeline import GatedPipeline
from tests.backends.local.worker_server import WorkerServer

MakeRequest = Callable[..., ImageRequest]


async def _wait_ready(client: httpx.AsyncClient) -> None:
    started = time.monotonic()
    while (await client.get("/readyz")).status_code != 200:
        assert time.monotonic() - started < 30, "the worker never became ready"
        await asyncio.sleep(0.02)


@pytest.fixture
async def gated_client(gated_pipeline: GatedPipeline) -> AsyncIterator[httpx.AsyncClient]:
    """A worker on loopback over the gated stand-in: one image per batch, one request may wait."""
    config = LocalBackendConfig(max_batch_size=1, batch_window_ms=0, max_queue=1)
    with WorkerServer(create_worker_app(config, factory=lambda _: gated_pipeline)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            await _wait_ready(client)
            yield client
        gated_pipeline.gate.set()


async def test_generates_over_loopback_and_batches_concurrent_requests(
    tiny_config: LocalBackendConfig, make_request: MakeRequest
) -> None:
    app = create_worker_app(tiny_config.model_copy(update={"batch_window_ms": 300.0}))
    with WorkerServer(app) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            await _wait_ready(client)
            requests = [make_request(seed=seed, steps=4, output_format="jpeg") for seed in (1, 2, 3)]
            answers = await asyncio.gather(*(
                client.post("/v1/generate", content=r.model_dump_json(),
                            headers={"content-type": "application/json"}) for r in requests))
            metrics = (await client.get("/metrics")).text
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    bodies = [answer.json() for answer in answers]
    assert {(b["format"], b["batch_size"], b["device"], len(b["images"])) for b in bodies} == {("jpeg", 3, "cpu", 1)}
    assert all(b["gpu_seconds"] > 0 for b in bodies)
    assert {sniff_format(base64.b64decode(b["images"][0])[:16]) for b in bodies} == {"jpeg"}
    assert len({b["images"][0] for b in bodies}) == 3
    assert 'boltgate_worker_batch_size_bucket{le="3.0"} 1.0' in metrics
    assert 'boltgate_worker_batch_size_bucket{le="2.0"} 0.0' in metrics
    assert "boltgate_worker_images_total 3.0" in metrics
    assert "boltgate_worker_gpu_memory_bytes 0.0" in metrics


async def test_answers_the_image_to_image_request_with_base64_init_image(
    gated_client: httpx.AsyncClient, gated_pipeline: GatedPipeline, make_request: MakeRequest
) -> None:
    gated_pipeline.gate.set()
    request = make_request(init_image=b"\x89PNG\r\n\x1a\n-not-checked-by-the-stand-in", n=2, steps=4,
                           strength=0.6)
    answer = await gated_client.post("/v1/generate", content=request.model_dump_json())
    assert answer.status_code == 200
    assert len(answer.json()["images"]) == 2
    assert answer.json()["strength"] == 0.5  # 0.6 with 4 steps is served as 2 of the 4 distilled steps
    assert gated_pipeline.batches[0][0].init_image == request.init_image


@pytest.mark.parametrize(("body", "param"), [
    ('{"prompt": "a cat", "steps": 3}', "steps"),
    ('{"prompt": "a cat", "width": 100}', "width"),
    ('{"prompt": "a cat", "init_image": "***"}', "init_image"),
    ('{"steps": 4}', "prompt"),
    ("not json", None),
])
async def test_invalid_input_is_a_400_in_openai_s_envelope(
    gated_client: httpx.AsyncClient, body: str, param: str | None
) -> None:
    answer = await gated_client.post("/v1/generate", content=body)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"]) == ("invalid_request_error", param)


async def test_a_full_queue_answers_503_with_retry_after(
    gated_client: httpx.AsyncClient, gated_pipeline: GatedPipeline, make_request: MakeRequest
) -> None:
    def send(seed: int) -> asyncio.Task[httpx.Response]:
        return asyncio.create_task(
            gated_client.post("/v1/generate", content=make_request(seed=seed).model_dump_json()))

    running = send(1)
    await asyncio.to_thread(gated_pipeline.started.wait, 5)
    queued = send(2)
    started = time.monotonic()
    while "boltgate_worker_queue_depth 1.0" not in (await gated_client.get("/metrics")).text:
        assert time.monotonic() - started < 10, "the second request never queued"
        await asyncio.sleep(0.01)
    refused = await send(3)
    assert refused.status_code == 503
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["code"] == "queue_full"
    gated_pipeline.gate.set()
    assert [(await task).status_code for task in (running, queued)] == [200, 200]
    metrics = (await gated_client.get("/metrics")).text
    assert "boltgate_worker_queue_rejections_total 1.0" in metrics
    assert 'boltgate_worker_requests_total{status="503"} 1.0' in metrics
    assert 'boltgate_worker_requests_total{status="200"} 2.0' in metrics
    assert "boltgate_worker_ready 1.0" in metrics


async def test_metrics_answer_in_prometheus_content_type_each_parameter_once(gated_client: httpx.AsyncClient) -> None:
    """A repeated ``charset`` is no media type to Go's parser: Prometheus 3 would fail the scrape."""
    response = await gated_client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST


async def test_is_not_ready_until_the_model_has_loaded(make_request: MakeRequest) -> None:
    pipeline = GatedPipeline()
    pipeline.gate.set()
    release = threading.Event()

    def slow(_: LocalBackendConfig) -> GatedPipeline:
        release.wait(10)
        return pipeline

    app = create_worker_app(LocalBackendConfig(), factory=slow)
    with WorkerServer(app) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").json() == {"status": "loading"}
        assert "boltgate_worker_ready 0.0" in client.get("/metrics").text
        early = client.post("/v1/generate", content=make_request().model_dump_json())
        assert early.status_code == 503 and "retry-after" in early.headers
        assert early.json()["error"]["code"] == "not_ready"
        release.set()
        started = time.monotonic()
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() - started < 10
            time.sleep(0.01)
        assert client.get("/readyz").json() == {"status": "ready", "device": "cpu"}


def test_a_model_that_failed_to_load_fails_liveness_so_kubernetes_restarts_the_worker() -> None:
    def broken(_: LocalBackendConfig) -> GatedPipeline:
        raise RuntimeError("weights missing: /models/base")

    app = create_worker_app(LocalBackendConfig(), factory=broken)
    with WorkerServer(app) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        started = time.monotonic()
        while client.get("/readyz").json()["status"] == "loading":
            assert time.monotonic() - started < 10
            time.sleep(0.01)
        ready, live = client.get("/readyz"), client.get("/healthz")
        metrics = client.get("/metrics").text
    assert (ready.status_code, ready.json()["status"]) == (503, "failed")
    assert live.status_code == 503
    assert "weights missing" in live.json()["error"]
    assert "boltgate_worker_ready 0.0" in metrics


async def test_metrics_are_prometheus_text(gated_client: httpx.AsyncClient) -> None:
    answer = await gated_client.get("/metrics")
    assert answer.headers["content-type"].startswith("text/plain")
    for name in ("boltgate_worker_queue_depth", "boltgate_worker_batch_size", "boltgate_worker_images_total",
                 "boltgate_worker_gpu_seconds_total", "boltgate_worker_gpu_memory_bytes",
                 "boltgate_worker_images_per_second", "boltgate_worker_eager_fallbacks_total"):
        assert f"# TYPE {name.removesuffix('_total')}" in answer.text, name


async def test_unknown_paths_answer_in_the_same_envelope(gated_client: httpx.AsyncClient) -> None:
    missing = await gated_client.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong_method = await gated_client.get("/v1/generate")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["type"] == "invalid_request_error"


async def test_the_gateways_probe_of_a_worker_fails_while_it_loads_and_passes_once_ready() -> None:
    from backends.vendors.backend import VendorBackend
    from backends.vendors.registry import VENDOR_SPECS

    loaded = threading.Event()

    def slow_factory(_: LocalBackendConfig) -> GatedPipeline:
        loaded.wait(10)
        return GatedPipeline()

    with WorkerServer(create_worker_app(LocalBackendConfig(), factory=slow_factory)) as server:
        backend = VendorBackend(VENDOR_SPECS["worker"], region="gpu-a", base_url=server.url, api_key=None)
        loading = await backend.probe(5)
        loaded.set()
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            await _wait_ready(client)
        ready = await backend.probe(5)
        await backend.aclose()

    assert (loading.ok, loading.detail) == (False, "GET answered 503")
    assert ready.ok


async def test_a_worker_that_keeps_failing_leaves_rotation_then_asks_for_a_restart(make_request: MakeRequest) -> None:
    class Wedged(GatedPipeline):
        def run(self, requests: Sequence[ImageRequest]) -> list[list[Image.Image]]:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")

    config = LocalBackendConfig(unready_after_failures=1, restart_after_failures=2, probe_interval_s=60)
    with WorkerServer(create_worker_app(config, factory=lambda _: Wedged())) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            await _wait_ready(client)
            first = await client.post("/v1/generate", content=make_request().model_dump_json())
            ready, live = await client.get("/readyz"), await client.get("/healthz")
            second = await client.post("/v1/generate", content=make_request().model_dump_json())
            live_after = await client.get("/healthz")
            metrics = (await client.get("/metrics")).text
    assert (first.status_code, first.json()["error"]["code"]) == (500, "pipeline_failed")
    assert (ready.status_code, ready.json()["status"], live.status_code) == (503, "failing", 200)
    assert second.status_code == 500
    assert (live_after.status_code, live_after.json()) == (503, {"status": "failing", "consecutive_failures": 2})
    assert "boltgate_worker_ready 0.0" in metrics
    assert "boltgate_worker_pipeline_failures_total 2.0" in metrics


async def test_the_worker_refuses_a_request_without_its_token(
    gated_pipeline: GatedPipeline, make_request: MakeRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOLTGATE_WORKER_TOKEN", "s3cret")
    gated_pipeline.gate.set()
    app = create_worker_app(LocalBackendConfig(), factory=lambda _: gated_pipeline)
    body = make_request().model_dump_json()
    with WorkerServer(app) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            await _wait_ready(client)  # probes and scrapes need no token
            missing = await client.post("/v1/generate", content=body)
            wrong = await client.post("/v1/generate", content=body, headers={"authorization": "Bearer guess"})
            right = await client.post("/v1/generate", content=body, headers={"authorization": "Bearer s3cret"})
            assert (await client.get("/metrics")).status_code == 200
    assert (missing.status_code, missing.json()["error"]["code"]) == (401, "invalid_api_key")
    assert wrong.status_code == 401
    assert right.status_code == 200
    assert len(gated_pipeline.batches) == 1


async def test_with_a_metrics_token_the_worker_s_metrics_need_it_and_only_it(
    gated_pipeline: GatedPipeline, make_request: MakeRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scraper's token and the gateway's are apart: neither opens the other's door."""
    monkeypatch.setenv("BOLTGATE_WORKER_TOKEN", "generate-s3cret")
    monkeypatch.setenv("TEST_WORKER_METRICS_TOKEN", "scrape-s3cret")
    gated_pipeline.gate.set()
    config = LocalBackendConfig(metrics_token_env="TEST_WORKER_METRICS_TOKEN")
    with WorkerServer(create_worker_app(config, factory=lambda _: gated_pipeline)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            await _wait_ready(client)  # probes need no token
            missing = await client.get("/metrics")
            wrong = await client.get("/metrics", headers={"authorization": "Bearer guess"})
            generate_token = await client.get("/metrics", headers={"authorization": "Bearer generate-s3cret"})
            right = await client.get("/metrics", headers={"authorization": "Bearer scrape-s3cret"})
            scrape_token = await client.post("/v1/generate", content=make_request().model_dump_json(),
                                             headers={"authorization": "Bearer scrape-s3cret"})
    assert (missing.status_code, missing.json()["error"]["code"]) == (401, "invalid_api_key")
    assert "/metrics needs the metrics token" in missing.json()["error"]["message"]
    assert "boltgate_worker" not in missing.text + wrong.text + generate_token.text
    assert (wrong.status_code, generate_token.status_code) == (401, 401)
    assert right.status_code == 200 and "# TYPE boltgate_worker_images" in right.text
    assert scrape_token.status_code == 401 and gated_pipeline.batches == []


async def test_a_client_that_leaves_has_no_image_generated(
    gated_client: httpx.AsyncClient, gated_pipeline: GatedPipeline, make_request: MakeRequest
) -> None:
    running = asyncio.create_task(gated_client.post("/v1/generate", content=make_request(seed=1).model_dump_json()))
    await asyncio.to_thread(gated_pipeline.started.wait, 5)
    with pytest.raises(httpx.ReadTimeout):  # the client gives up after 0.2 s and closes its connection
        await gated_client.post("/v1/generate", content=make_request(seed=2).model_dump_json(), timeout=0.2)
    started = time.monotonic()
    while "boltgate_worker_queue_depth 0.0" not in (await gated_client.get("/metrics")).text:
        assert time.monotonic() - started < 5, "the abandoned request stayed queued"
        await asyncio.sleep(0.01)
    gated_pipeline.gate.set()
    assert (await running).status_code == 200
    assert [[r.seed for r in batch] for batch in gated_pipeline.batches] == [[1]]


async def test_a_request_whose_deadline_passes_in_the_queue_is_dropped(
    gated_client: httpx.AsyncClient, gated_pipeline: GatedPipeline, make_request: MakeRequest
) -> None:
    running = asyncio.create_task(gated_client.post("/v1/generate", content=make_request(seed=1).model_dump_json()))
    await asyncio.to_thread(gated_pipeline.started.wait, 5)
    late = asyncio.create_task(gated_client.post("/v1/generate", content=make_request(seed=2).model_dump_json(),
                                                 headers={"X-Boltgate-Timeout-S": "0.1"}))
    await asyncio.sleep(0.3)
    gated_pipeline.gate.set()
    answer = await late
    assert (await running).status_code == 200
    assert answer.status_code >= 500 and "deadline" in answer.json()["error"]["message"]
    assert [[r.seed for r in batch] for batch in gated_pipeline.batches] == [[1]]
    assert 'boltgate_worker_dropped_total{reason="expired"} 1.0' in (await gated_client.get("/metrics")).text
