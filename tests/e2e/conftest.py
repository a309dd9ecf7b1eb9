"""End-to-end fixtures: real simulator servers and the real gateway, all on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from backends.simulators import SimulatorConfig, SimulatorServer
from proxy.settings import RegionConfig, RouteConfig, Settings
from tests.e2e.gateway_server import GatewayServer

SIM_KEY = "sim-e2e-key"
KEY_ENV = "BOLTGATE_E2E_SIM_KEY"
SIM_POLL_S = 0.02
"""Job vendors' simulators on loopback are polled faster than the real vendors' documented pace."""


@pytest.fixture(autouse=True)
def _sim_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, SIM_KEY)


StartSimulator = Callable[..., SimulatorServer]


@pytest.fixture
def simulator() -> Iterator[StartSimulator]:
    """Start a vendor simulator (stopped after the test)."""
    started: list[SimulatorServer] = []

    def start(vendor: str, **config: Any) -> SimulatorServer:
        server = SimulatorServer(vendor, SimulatorConfig(api_key=SIM_KEY, **config)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def route_to(*servers: SimulatorServer, vendor: str | None = None, priority: int = 100,
             **fields: Any) -> RouteConfig:
    """One route whose regions are the given simulators (region names r1, r2, ...)."""
    fields.setdefault("poll_interval_s", SIM_POLL_S)
    regions = [RegionConfig(name=f"r{index}", base_url=server.base_url) for index, server in enumerate(servers, 1)]
    return RouteConfig(vendor=vendor or servers[0].vendor, key_env=KEY_ENV, regions=regions,  # type: ignore[arg-type]
                       priority=priority, **fields)


StartGateway = Callable[..., GatewayServer]


@pytest.fixture
def gateway() -> Iterator[StartGateway]:
    """Start the real gateway app on a loopback port with the given routes and settings."""
    started: list[GatewayServer] = []

    def start(*routes: RouteConfig, **settings: Any) -> GatewayServer:
        settings.setdefault("simulators", "off")
        settings.setdefault("retry", {"backoff_initial_s": 0.05, "backoff_max_s": 0.2, "jitter_s": 0.05})
        server = GatewayServer(Settings(routes=list(routes), **settings)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
