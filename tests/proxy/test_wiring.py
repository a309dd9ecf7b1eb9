"""The wiring builds routes from vendor accounts and never leaves a half-built gateway running."""

from __future__ import annotations

import pytest

from backends.vendors.backend import VendorBackend
from pricing.catalog import UnknownVendor
from proxy.settings import RegionConfig, RouteConfig, Settings
from proxy.wiring import Overrides, build_gateway, build_routes
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to


def test_an_accounts_regions_become_routes_ranked_in_order_under_one_account() -> None:
    regions = [RegionConfig(name="eu", base_url="http://eu.test"), RegionConfig(name="us", base_url="http://us.test")]
    accounts = [(RouteConfig(vendor="runflow", regions=regions, priority=7), "rf-key"),
                (RouteConfig(vendor="eachlabs"), "el-key")]

    routes = build_routes(accounts)

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
