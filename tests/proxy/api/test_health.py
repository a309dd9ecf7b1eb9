"""Liveness, readiness and the Prometheus endpoint."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from prometheus_client import CONTENT_TYPE_LATEST

from backends.base import ProbeOutcome
from backends.local.config import LocalBackendConfig
from backends.local.inprocess import LocalPipelineBackend
from core.errors import VendorUnavailable
from core.state.redis import RedisStateStore
from proxy.api.app import create_app
from proxy.routing.health import RouteHealth
from proxy.settings import BreakerConfig, Settings
from tests.backends.local.gated_pipeline import GatedPipeline
from tests.proxy.api.served_app import Client, Vendors, serving
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to
from tests.redis_server import RedisServer


async def test_healthz_answers_ok(client: Client) -> None:
    response = await client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_ready_with_routes_and_a_working_store(client: Client) -> None:
    response = await client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "problems": [], "routes": [
        {"route": "runflow:eu", "state": "closed", "reason": ""},
        {"route": "eachlabs:us", "state": "closed", "reason": ""}]}


async def test_readyz_is_not_ready_without_a_route() -> None:
    async with AsyncTestClient(app=create_app(Settings(simulators="off"))) as client:
        response = await client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["problems"] == ["no route enabled"]
    assert response.headers["retry-after"] == "5"


async def test_readyz_is_not_ready_when_every_route_is_open_and_ready_again_when_a_probe_passes(
    vendors: Vendors,
) -> None:
    for vendor in (vendors.text_only, vendors.editor):
        vendor.script.extend([VendorUnavailable("down", status=500)] * 6)
        vendor.probe_script.extend([ProbeOutcome(False, "GET answered 503")] * 10_000)  # down until cleared
    async with serving(vendors.routes(), probes={"interval_s": 0.05}) as client:
        for _ in range(2):  # two requests of three attempts each open both circuits (threshold 5)
            assert (await client.post("/v1/images/generations", json={"prompt": "a kite"})).status_code == 503
        out = await client.get("/readyz")
        vendors.editor.probe_script.clear()  # its next probe passes
        back = await eventually_ready(client)

    assert out.status_code == 503
    assert out.headers["retry-after"] == "5"
    assert out.json()["problems"][0].startswith("no route can serve: runflow:eu: circuit open")
    assert [route["state"] for route in out.json()["routes"]] == ["open", "open"]
    assert [route["state"] for route in back.json()["routes"]] == ["open", "half_open"]


async def eventually_ready(client: Client) -> Any:
    for _ in range(400):
        response = await client.get("/readyz")
        if response.status_code == 200:
            return response
        await asyncio.sleep(0.025)
    raise AssertionError("never ready again")


async def test_metrics_are_prometheus_text(client: Client) -> None:
    await client.post("/v1/images/generations", json={"prompt": "a kite"})

    response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    for name in ("boltgate_requests_total", "boltgate_backend_attempts_total", "boltgate_images_total",
                 "boltgate_gateway_overhead_seconds_bucket"):
        assert name in response.text


async def test_metrics_name_each_content_type_parameter_once(client: Client) -> None:
    """Go's media-type parser (Prometheus') refuses a repeated parameter, and Prometheus 3 then fails
    the scrape: ``text/plain; version=1.0.0; charset=utf-8; charset=utf-8`` is no media type."""
    content_type = (await client.get("/metrics")).headers["content-type"]

    names = [parameter.split("=")[0].strip() for parameter in content_type.split(";")[1:]]
    assert sorted(names) == ["charset", "version"]


async def test_readyz_is_not_ready_while_the_in_process_pipeline_warms_up() -> None:
    loaded = threading.Event()

    def slow_factory(_: LocalBackendConfig) -> GatedPipeline:
        loaded.wait(10)
        return GatedPipeline()

    local = LocalPipelineBackend(factory=slow_factory)
    async with serving([route_to(local, priority=0), route_to(ScriptedBackend("runflow"))]) as client:
        warming = await client.get("/readyz")  # the app's start began loading the model
        loaded.set()
        warm = await eventually_ready(client)

    assert warming.status_code == 503
    assert warming.json()["problems"] == ["warming up: local:in-process"]
    assert warming.headers["retry-after"] == "5"
    assert warm.status_code == 200
    assert warm.json()["routes"][0] == {"route": "local:in-process", "state": "closed", "reason": "",
                                        "model": "ready"}


@pytest.mark.redis
async def test_the_circuit_gauge_is_read_from_the_shared_state_at_scrape_time(vendors: Vendors) -> None:
    open_line = 'boltgate_circuit_open{backend="runflow",region="eu"} 1.0'
    closed_line = 'boltgate_circuit_open{backend="runflow",region="eu"} 0.0'
    with RedisServer() as url:
        other_replica = RouteHealth(RedisStateStore.from_url(url), BreakerConfig(failure_threshold=1, open_s=0.3))
        async with serving(vendors.routes(), state_backend="redis", redis_url=url) as client:
            await other_replica.record_failure(route_to(vendors.text_only), "timeout")  # not this replica
            while_open = (await client.get("/metrics")).text
            await asyncio.sleep(0.35)  # the breaker expires in the store: nothing is left open
            after = (await client.get("/metrics")).text
        await other_replica.store.aclose()

    assert open_line in while_open
    assert 'boltgate_route_state{backend="runflow",region="eu",state="open"} 1.0' in while_open
    assert closed_line in after
    assert 'boltgate_route_state{backend="runflow",region="eu",state="closed"} 1.0' in after
