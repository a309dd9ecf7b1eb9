"""schemathesis, with ``--checks all``, finds nothing wrong with the gateway as ``make run`` serves
it (the built-in vendor simulators, no keys): every answer has a documented status, content type,
headers and body; every valid request is served and every invalid one refused with a 4xx;
undocumented methods get 405 with ``Allow``, and ``OPTIONS`` lists exactly the documented ones.

A small example budget keeps the run to a few seconds; a fixed seed makes it repeatable.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.settings import Settings
from tests.e2e.gateway_server import GatewayServer

HERE = Path(__file__).parent / "fuzzing"
ROOT = Path(__file__).parents[2]


@pytest.fixture
def make_run_gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[GatewayServer]:
    """The gateway with ``make run``'s settings: nothing configured, so the simulators serve."""
    for name in list(os.environ):
        if name.startswith("BOLTGATE_") or name.endswith("_API_KEY"):
            monkeypatch.delenv(name)
    server = GatewayServer(Settings()).start()
    yield server
    server.stop()


def test_schemathesis_finds_no_failure(make_run_gateway: GatewayServer) -> None:
    command = [
        str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(HERE / "schemathesis.toml"),
        "--no-color", "run", f"{make_run_gateway.base_url}/schema/openapi.json",
        "--checks", "all", "--max-examples", "10", "--seed", "1", "--workers", "1", "--generation-database", "none",
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.e2e.fuzzing.hooks",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}

    run = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT, check=False)

    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    assert "12 selected" in run.stdout
