"""The embedded demo: the five vendor simulators on loopback, routed to like real vendors."""

from __future__ import annotations

import asyncio

from backends.vendors.registry import VENDOR_SPECS
from proxy.routing.route import Route
from proxy.settings import RegionConfig, RouteConfig
from proxy.wiring import Closer, build_routes

DEMO_POLL_INTERVAL_S = 0.05
"""The simulators run on loopback and finish a job in ~0.1 s: polled faster than a real vendor."""


def demo_priority(vendor: str) -> int:
    """Each vendor's own ``demo_priority`` (cheapest first, as an operator would likely order)."""
    spec = VENDOR_SPECS.get(vendor)
    priority = spec.facts.demo_priority if spec is not None else None
    return priority if priority is not None else 100


def simulator_routes() -> tuple[list[Route], str, Closer]:
    """Start every simulator; the routes to them, a description, and how to stop them."""
    from backends.simulators import start_simulators, stop_simulators

    servers = start_simulators()
    configs = [
        RouteConfig(vendor=vendor, priority=demo_priority(vendor), poll_interval_s=DEMO_POLL_INTERVAL_S,
                    regions=[RegionConfig(name="sim", base_url=server.base_url)], timeout_s=15)
        for vendor, server in servers.items()
    ]
    routes = build_routes(configs, keys={vendor: server.api_key for vendor, server in servers.items()})
    described = ", ".join(f"{vendor} at {server.base_url}" for vendor, server in servers.items())

    async def stop() -> None:
        await asyncio.to_thread(stop_simulators, servers.values())

    return routes, described, stop
