"""The real gateway in front of a hostile vendor: it fails over, charges nothing for the hostile
route, never reaches the internal service, and never relays the vendor's key. The fetch cases run
with each ``http_client`` setting (lean, aiohttp, httpx): the policy is the route's, whichever
client."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from proxy.settings import RegionConfig, RouteConfig
from tests.backends.vendors.hostile import HostileWorld, ThreadedWorld
from tests.e2e.conftest import KEY_ENV, SIM_KEY, StartGateway, StartSimulator, route_to

BODY = {"model": "sdxl-lightning", "prompt": "a lighthouse", "size": "256x256", "response_format": "b64_json"}
CLIENT = {"Authorization": "Bearer bg-client"}


@pytest.fixture
def world() -> Iterator[HostileWorld]:
    with ThreadedWorld() as started:
        yield started


def hostile_route(world: HostileWorld, priority: int = 10) -> RouteConfig:
    return RouteConfig(vendor="aigateway", key_env=KEY_ENV, priority=priority, max_attempts=2,
                       regions=[RegionConfig(name="hostile", base_url=world.vendor_server.url)],
                       options={"response_format": "url"})


def spent(base_url: str) -> Decimal:
    return Decimal(httpx.get(f"{base_url}/v1/usage", headers=CLIENT).json()["spent_usd"])


@pytest.mark.parametrize("http_client", ["lean", "aiohttp", "httpx"])
def test_a_redirect_to_an_internal_service_fails_over_and_is_never_fetched_or_charged(
    world: HostileWorld, simulator: StartSimulator, gateway: StartGateway, http_client: str
) -> None:
    world.vendor.output_url = f"{world.vendor_server.url}/img/redirect?to={world.internal_server.url}/meta-data"
    server = gateway(hostile_route(world), route_to(simulator("callmissed"), priority=20),
                     api_keys={"bg-client": {"name": "client"}}, http_client=http_client)

    response = httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, headers=CLIENT, timeout=30)

    assert response.status_code == 200, response.text
    assert response.headers["x-boltgate-backend"] == "callmissed"
    assert world.internal.requests == []
    assert spent(server.base_url) == Decimal(response.headers["x-boltgate-cost-usd"])  # the simulator only


@pytest.mark.parametrize("http_client", ["lean", "aiohttp", "httpx"])
@pytest.mark.parametrize("path", ["/img/gzip-bomb?mb=64", "/img/flood?mb=64", "/img/bomb.png"])
def test_with_no_other_route_a_hostile_output_is_a_clear_503_and_costs_nothing(
    world: HostileWorld, gateway: StartGateway, path: str, http_client: str
) -> None:
    world.vendor.output_url = f"{world.vendor_server.url}{path}"
    server = gateway(hostile_route(world), api_keys={"bg-client": {"name": "client"}},
                     outbound={"max_image_bytes": 4 * 1024 * 1024}, http_client=http_client)

    response = httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, headers=CLIENT, timeout=30)

    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "no_backend_available"
    assert spent(server.base_url) == 0


def test_a_vendor_error_echoing_the_key_reaches_neither_the_client_nor_the_log(
    world: HostileWorld, gateway: StartGateway, caplog: pytest.LogCaptureFixture
) -> None:
    world.vendor.error_body = b'{"error": {"message": "bad gateway; you sent x-api-key: ' + SIM_KEY.encode() + b'"}}'
    server = gateway(hostile_route(world))

    with caplog.at_level(logging.INFO):
        response = httpx.post(f"{server.base_url}/v1/images/generations", json=BODY, timeout=30)

    assert response.status_code == 503
    assert "[redacted]" in response.text
    assert SIM_KEY not in response.text and SIM_KEY not in caplog.text
