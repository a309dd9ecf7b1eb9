"""SimulatorServer runs a simulator on loopback in a thread, and can refuse connections."""

from __future__ import annotations

import errno

import httpx
import pytest

from backends.simulators import VENDORS, Fault, SimulatorConfig, SimulatorServer, start_simulators, stop_simulators
from tests.free_port import PortTaken, on_a_free_port

VENDOR = "runflow"


def _eachlabs_from(port: int) -> tuple[int, dict[str, SimulatorServer]]:
    """``port`` and ``start_simulators(port_base=port)``; ``PortTaken`` when something bound the port
    since it was picked."""
    try:
        return port, start_simulators(["eachlabs"], port_base=port)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise PortTaken(f"port {port} was taken before the simulator bound it") from error
        raise


def test_a_started_server_listens_on_its_base_url_until_stopped(client) -> None:
    server = SimulatorServer("imageapi", SimulatorConfig(api_key="k-1"))
    with server:
        assert server.base_url == f"http://127.0.0.1:{server.port}"
        assert server.api_key == "k-1"
        assert client.get(server.base_url + "/_sim/health").status_code == 200
    with pytest.raises(httpx.ConnectError):
        client.get(server.base_url + "/_sim/health")


def test_refused_connections_fail_to_connect_until_accepted_again_with_state_kept(sim, client, bearer) -> None:
    run = client.post(
        sim.base_url + "/v1/models/bytedance/sd-xl-lightning/runs", headers=bearer, json={"input": {"prompt": "x"}}
    ).json()
    url = f"{sim.base_url}/v1/runs/{run['id']}"

    sim.refuse_connections()
    with pytest.raises(httpx.ConnectError):
        client.get(url, headers=bearer)
    sim.accept_connections()

    assert client.get(url, headers=bearer).json()["id"] == run["id"]


def test_start_simulators_starts_every_vendor_on_its_own_port(client) -> None:
    servers = start_simulators()
    try:
        assert tuple(servers) == VENDORS == ("aigateway", "callmissed", "eachlabs", "imageapi", "runflow")
        assert len({server.port for server in servers.values()}) == 5
        for vendor, server in servers.items():
            assert client.get(server.base_url + "/_sim/health").json()["vendor"] == vendor
    finally:
        stop_simulators(servers.values())


def test_start_simulators_can_use_consecutive_ports(client) -> None:
    base, servers = on_a_free_port(_eachlabs_from)
    try:
        assert servers["eachlabs"].port == base
    finally:
        stop_simulators(servers.values())


def test_an_unknown_vendor_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown vendor"):
        SimulatorServer("openai")


def test_job_faults_are_refused_for_a_synchronous_vendor() -> None:
    with pytest.raises(ValueError, match="stuck_queued"):
        SimulatorServer("callmissed").inject(Fault("stuck_queued"))
