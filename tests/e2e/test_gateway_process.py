"""The harness's gateway process starts even when the free port it picked is taken meanwhile."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from tests.e2e.gateway_process import GatewayProcess

SETTINGS: dict[str, object] = {"state_backend": "memory", "simulators": "on"}


@pytest.mark.parametrize("args", [[], ["--workers", "2"]], ids=["one process", "supervisor"])
def test_a_port_taken_before_the_gateway_binds_it_is_replaced_by_another(tmp_path: Path, args: list[str]) -> None:
    settings = {**SETTINGS, "state_backend": "sqlite", "data_dir": str(tmp_path)} if args else SETTINGS
    gateway = GatewayProcess(settings, tmp_path / "gateway.log", args=args)
    with socket.socket() as squatter:  # another process took the port between the pick and the bind
        squatter.bind(("127.0.0.1", gateway.port))
        squatter.listen()
        taken = gateway.port

        with gateway:
            assert gateway.port != taken
            assert httpx.get(f"{gateway.base_url}/healthz", timeout=5).status_code == 200
        assert "address already in use" in gateway.log().lower()  # the first start failed on the bind
