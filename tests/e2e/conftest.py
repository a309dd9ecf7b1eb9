"""End-to-end fixtures: real simulator servers and the real gateway, all on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from backends.simulators import SimulatorConfig, SimulatorServer
from proxy.settings import RegionConfig, RouteConfig, Settings
from tests.e2e.gateway_server import GatewayServer

SIM_KEY = "sim-e2e-key"
KEY_ENV = "BOLTGATE_E2E_SIM_KEY"
SIM_POLL_S = 0.02
"""Job vendors' simulators on loopback are polled faster than the real vendors' documented pace."""
HERE = Path(__file__).parent


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder is end to end, so ``-m "not e2e"`` leaves all of them out.

    First, so that the marker is on before ``-m`` deselects; the hook sees the whole session's
    items, hence the check on the path.
    """
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True)
def _sim_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, SIM_KEY)


class Stoppable(Protocol):
    def stop(self) -> None: ...


S = TypeVar("S", bound=Stoppable)


class RunningServers:
    """The servers one test started, stopped together when it ends.

    uvicorn notices a stop on its next 0.1 s tick, then gives open connections another 0.1 s, and a
    test starts two to five servers: stopped one after another, that was a third of the e2e time.
    """

    def __init__(self) -> None:
        self._servers: list[Stoppable] = []

    def add(self, server: S) -> S:
        self._servers.append(server)
        return server

    def stop_all(self) -> None:
        servers, self._servers = self._servers, []
        if servers:
            with ThreadPoolExecutor(max_workers=len(servers), thread_name_prefix="stop") as pool:
                for stopping in [pool.submit(server.stop) for server in servers]:
                    stopping.result()  # a server that fails to stop fails the test


@pytest.fixture
def running_servers() -> Iterator[RunningServers]:
    servers = RunningServers()
    yield servers
    servers.stop_all()


StartSimulator = Callable[..., SimulatorServer]


@pytest.fixture
def simulator(running_servers: RunningServers) -> StartSimulator:
    """Start a vendor simulator (stopped after the test)."""

    def start(vendor: str, **config: Any) -> SimulatorServer:
        return running_servers.add(SimulatorServer(vendor, SimulatorConfig(api_key=SIM_KEY, **config)).start())

    return start


def route_to(*servers: SimulatorServer, vendor: str | None = None, priority: int = 100,
             **fields: Any) -> RouteConfig:
    """One route whose regions are the given simulators (region names r1, r2, ...)."""
    fields.setdefault("poll_interval_s", SIM_POLL_S)
    regions = [RegionConfig(name=f"r{index}", base_url=server.base_url) for index, server in enumerate(servers, 1)]
    return RouteConfig(vendor=vendor or servers[0].vendor, key_env=KEY_ENV, regions=regions,  # type: ignore[arg-type]
                       priority=priority, **fields)


StartGateway = Callable[..., GatewayServer]


@pytest.fixture
def gateway(running_servers: RunningServers) -> StartGateway:
    """Start the real gateway app on a loopback port with the given routes and settings."""

    def start(*routes: RouteConfig, **settings: Any) -> GatewayServer:
        settings.setdefault("simulators", "off")
        settings.setdefault("probes", {"enabled": False})  # tests that count vendor requests; see test_probes
        settings.setdefault("retry", {"backoff_initial_s": 0.05, "backoff_max_s": 0.2, "jitter_s": 0.05})
        return running_servers.add(GatewayServer(Settings(routes=list(routes), **settings)).start())

    return start
