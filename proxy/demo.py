"""The embedded demo: the five vendor simulators on loopback, described as routes to real vendors.

The demo only starts the simulators and says how to reach them (route configs and the keys they
accept); ``proxy.wiring`` builds the routes, exactly as it does for vendors named in the settings.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from backends.simulators import SimulatorConfig, SimulatorServer, start_simulators, stop_simulators
from backends.vendors.registry import VENDOR_SPECS
from proxy.settings import RegionConfig, RouteConfig

DEMO_REQUEST_LOG = 200
"""Requests each demo simulator remembers: the demo never reads them (tests keep the default), and
thousands of remembered requests were most of what ``make run`` kept after a long load."""
DEMO_POLL_INTERVAL_S = 0.05
"""The simulators run on loopback and finish a job in ~0.1 s: polled faster than a real vendor."""


def demo_priority(vendor: str) -> int:
    """Each vendor's own ``demo_priority`` (cheapest first, as an operator would likely order)."""
    spec = VENDOR_SPECS.get(vendor)
    priority = spec.facts.demo_priority if spec is not None else None
    return priority if priority is not None else 100


@dataclass(frozen=True, slots=True)
class SimulatorDemo:
    """Running simulators: a route config and the key each one accepts, per vendor."""

    configs: list[RouteConfig]
    keys: dict[str, str]
    described: str
    """Where each simulator listens, for the notice the gateway logs."""
    servers: tuple[SimulatorServer, ...]

    async def stop(self) -> None:
        await asyncio.to_thread(stop_simulators, self.servers)


DEMO_REGION = "sim"
"""The one region of every demo route."""


def start_simulator_demo() -> SimulatorDemo:
    """Start every simulator on a free loopback port."""
    servers = start_simulators(config=SimulatorConfig(request_log_size=DEMO_REQUEST_LOG))
    configs = [
        RouteConfig(vendor=vendor, priority=demo_priority(vendor), poll_interval_s=DEMO_POLL_INTERVAL_S,
                    regions=[RegionConfig(name=DEMO_REGION, base_url=server.base_url)], timeout_s=15)
        for vendor, server in servers.items()
    ]
    return SimulatorDemo(
        configs=configs,
        keys={vendor: server.api_key for vendor, server in servers.items()},
        described=", ".join(f"{vendor} at {server.base_url}" for vendor, server in servers.items()),
        servers=tuple(servers.values()),
    )
