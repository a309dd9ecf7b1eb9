"""The embedded demo: the five vendor simulators on loopback, routed to like real vendors."""

from __future__ import annotations

import asyncio

from backends.vendors.http import HttpClientKind
from proxy.routing.route import Route
from proxy.settings import RegionConfig, RouteConfig
from proxy.wiring import Closer, build_routes

DEMO_PRIORITIES = {"aigateway": 10, "runflow": 20, "eachlabs": 30, "imageapi": 40, "callmissed": 50}
"""Cheapest first, as an operator would likely order them."""


def simulator_routes(http_client: HttpClientKind) -> tuple[list[Route], str, Closer]:
    """Start every simulator; the routes to them, a description, and how to stop them."""
    from backends.simulators import start_simulators, stop_simulators

    servers = start_simulators()
    configs = [
        RouteConfig(vendor=vendor, priority=DEMO_PRIORITIES.get(vendor, 100),
                    regions=[RegionConfig(name="sim", base_url=server.base_url)], timeout_s=15)
        for vendor, server in servers.items()
    ]
    routes = build_routes(configs, http_client, keys={vendor: server.api_key for vendor, server in servers.items()})
    described = ", ".join(f"{vendor} at {server.base_url}" for vendor, server in servers.items())

    async def stop() -> None:
        await asyncio.to_thread(stop_simulators, servers.values())

    return routes, described, stop
