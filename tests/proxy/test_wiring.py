"""The wiring builds what the settings name: here, the HTTP client of every vendor route."""

from __future__ import annotations

import pytest

from backends.vendors.backend import VendorBackend
from backends.vendors.http import AiohttpClient, HttpxClient
from proxy.settings import RegionConfig, RouteConfig, Settings
from proxy.wiring import build_routes

ROUTES = [
    RouteConfig(vendor="runflow", regions=[RegionConfig(name="us", base_url="https://us.runflow.test"),
                                           RegionConfig(name="eu", base_url="https://eu.runflow.test")]),
    RouteConfig(vendor="worker", regions=[RegionConfig(name="gpu", base_url="http://worker.test:9000")]),
]


def test_aiohttp_is_the_default() -> None:
    assert Settings().http_client == "aiohttp"


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOLTGATE_HTTP_CLIENT", "httpx")
    assert Settings().http_client == "httpx"


def test_an_unknown_client_is_refused() -> None:
    with pytest.raises(ValueError, match="http_client"):
        Settings(http_client="requests")


@pytest.mark.parametrize(("kind", "expected"), [("aiohttp", AiohttpClient), ("httpx", HttpxClient)])
async def test_every_vendor_route_region_gets_its_own_client_of_the_chosen_kind(
    kind: str, expected: type
) -> None:
    routes = build_routes(ROUTES, Settings(http_client=kind).http_client)
    try:
        backends = [route.backend for route in routes]
        assert all(isinstance(backend, VendorBackend) for backend in backends)
        clients = [backend.http_client for backend in backends if isinstance(backend, VendorBackend)]
        assert [type(client) for client in clients] == [expected] * 3
        assert len({id(client) for client in clients}) == 3
    finally:
        for route in routes:
            await route.backend.aclose()
