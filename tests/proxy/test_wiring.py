"""The wiring builds routes from vendor accounts, with the HTTP client the settings name, and
never leaves a half-built gateway running."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from backends.vendors.backend import VendorBackend
from backends.vendors.http import AiohttpClient, HttpxClient, LeanClient
from core.state.memory import MemoryStateStore
from core.state.sqlite import SqliteStateStore
from pricing.catalog import UnknownVendor
from proxy.settings import OutboundConfig, RegionConfig, RouteConfig, Settings
from proxy.wiring import Overrides, Warming, build_gateway, build_routes, build_stores, image_directory, images_on_disk
from tests.proxy.deaf_task import Deaf, ends_within
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to


def test_an_accounts_regions_become_routes_ranked_in_order_under_one_account() -> None:
    regions = [RegionConfig(name="eu", base_url="http://eu.test"), RegionConfig(name="us", base_url="http://us.test")]
    accounts = [(RouteConfig(vendor="runflow", regions=regions, priority=7), "rf-key"),
                (RouteConfig(vendor="eachlabs"), "el-key")]

    routes = build_routes(accounts, "aiohttp")

    assert [(r.key, r.account, r.region_rank, r.priority) for r in routes] == [
        ("runflow:eu", "0:runflow", 0, 7), ("runflow:us", "0:runflow", 1, 7),
        ("eachlabs:default", "1:eachlabs", 0, 100),
    ]
    assert all(isinstance(route.backend, VendorBackend) for route in routes)


async def test_a_gateway_that_fails_to_build_closes_what_it_was_given() -> None:
    unpriced = ScriptedBackend("acme")

    with pytest.raises(UnknownVendor):
        await build_gateway(Settings(simulators="off"), Overrides(routes=[route_to(unpriced)]))

    assert unpriced.closed


async def test_a_route_that_fails_to_close_does_not_keep_the_rest_open() -> None:
    kept, broken = ScriptedBackend("runflow"), ScriptedBackend("eachlabs")

    async def refuse() -> None:
        raise OSError("the pool's socket was gone")

    broken.aclose = refuse  # type: ignore[method-assign]
    running = await build_gateway(Settings(simulators="off"), Overrides(routes=[route_to(kept), route_to(broken)]))
    names = [closer.name for closer in running.closers]

    await running.aclose()  # closes the last route first: the broken one

    assert kept.closed
    assert names[0] == "state stores" and names[-1] == "job runner"  # stores closed last, the runner first


async def test_a_model_load_that_swallows_every_cancel_does_not_hold_the_stop() -> None:
    deaf = Deaf()
    warming = Warming([asyncio.create_task(deaf.run(), name="load local:gpu0")])
    await deaf.started.wait()

    await ends_within(warming.cancel_all(), deaf)

    assert deaf.cancels >= 2  # cancelled again, not once and then awaited forever
    deaf.release()  # the test's own clean-up: the load left behind ends


def test_the_lean_client_is_the_default_http_client() -> None:
    assert Settings().http_client == "lean"


def test_the_http_client_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOLTGATE_HTTP_CLIENT", "httpx")
    assert Settings().http_client == "httpx"


def test_an_unknown_http_client_is_refused() -> None:
    with pytest.raises(ValueError, match="http_client"):
        Settings(http_client="requests")


@pytest.mark.parametrize(("kind", "expected"),
                         [("lean", LeanClient), ("aiohttp", AiohttpClient), ("httpx", HttpxClient)])
async def test_every_vendor_route_region_gets_its_own_client_of_the_chosen_kind(kind: str, expected: type) -> None:
    accounts = [
        (RouteConfig(vendor="runflow", regions=[RegionConfig(name="us", base_url="https://us.runflow.test"),
                                                RegionConfig(name="eu", base_url="https://eu.runflow.test")]), "k"),
        (RouteConfig(vendor="worker", regions=[RegionConfig(name="gpu", base_url="http://worker.test:9000")]), None),
    ]
    routes = build_routes(accounts, Settings(http_client=kind).http_client)
    try:
        backends = [route.backend for route in routes]
        assert all(isinstance(backend, VendorBackend) for backend in backends)
        clients = [backend.http_client for backend in backends if isinstance(backend, VendorBackend)]
        assert [type(client) for client in clients] == [expected] * 3
        assert len({id(client) for client in clients}) == 3
    finally:
        for route in routes:
            await route.backend.aclose()


async def test_every_route_checks_vendor_images_against_the_settings_pixel_cap() -> None:
    accounts = [(RouteConfig(vendor="runflow"), "k"), (RouteConfig(vendor="callmissed"), "k")]
    routes = build_routes(accounts, "aiohttp", OutboundConfig(max_image_pixels=777_777))
    try:
        assert [route.backend.limits.max_image_pixels for route in routes
                if isinstance(route.backend, VendorBackend)] == [777_777, 777_777]
    finally:
        for route in routes:
            await route.backend.aclose()


async def test_the_gateway_converts_and_checks_blank_images_under_the_settings_pixel_cap() -> None:
    settings = Settings(simulators="off", outbound=OutboundConfig(max_image_pixels=777_777))
    running = await build_gateway(settings, Overrides(routes=[route_to(ScriptedBackend("runflow"))]))
    try:
        assert running.gateway.max_image_pixels == 777_777
        assert running.gateway.router.attempts.max_image_pixels == 777_777
    finally:
        await running.aclose()


def test_several_workers_on_sqlite_share_breakers_and_images_through_the_file_and_the_disk(tmp_path: Path) -> None:
    one = Settings(data_dir=tmp_path / "one")
    several = Settings(data_dir=tmp_path / "several", workers=2)
    assert isinstance(build_stores(one).shared, MemoryStateStore)
    stores = build_stores(several)
    assert isinstance(stores.shared, SqliteStateStore) and stores.shared is stores.durable
    assert images_on_disk(several)


def test_images_on_the_sqlite_store_are_on_disk_beside_its_file_so_a_restart_keeps_them(tmp_path: Path) -> None:
    """Its charges, job ends and replays outlive the process: the images they point at must too."""
    one = Settings(data_dir=tmp_path / "data")
    assert images_on_disk(one) and image_directory(one) == tmp_path / "data" / "images"
    assert image_directory(Settings(data_dir=tmp_path / "data", image_dir=tmp_path / "elsewhere")) == \
        tmp_path / "elsewhere"
    assert not images_on_disk(Settings(state_backend="memory"))
