"""Liveness, readiness and the Prometheus endpoint."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from proxy.api.app import create_app
from proxy.settings import Settings
from tests.proxy.api.served_app import Client


async def test_healthz_answers_ok(client: Client) -> None:
    response = await client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_ready_with_routes_and_a_working_store(client: Client) -> None:
    response = await client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "problems": [], "routes": ["runflow:eu", "eachlabs:us"]}


async def test_readyz_is_not_ready_without_a_route() -> None:
    async with AsyncTestClient(app=create_app(Settings(simulators="off"))) as client:
        response = await client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["problems"] == ["no route enabled"]


async def test_metrics_are_prometheus_text(client: Client) -> None:
    await client.post("/v1/images/generations", json={"prompt": "a kite"})

    response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    for name in ("boltgate_requests_total", "boltgate_backend_attempts_total", "boltgate_images_total",
                 "boltgate_gateway_overhead_seconds_bucket"):
        assert name in response.text
