"""schemathesis, with ``--checks all``, finds nothing wrong with the gateway as ``make run`` serves
it (the built-in vendor simulators, no keys): every answer has a documented status, content type,
headers and body; every valid request is served and every invalid one refused with a 4xx;
undocumented methods get 405 with ``Allow``, and ``OPTIONS`` lists exactly the documented ones.

A second run covers the admin API, on with a token that every request carries. A small example
budget keeps each run to a few seconds; a fixed seed makes them repeatable.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from proxy.settings import Settings
from tests.asgi_server import AsgiServer
from tests.e2e.gateway_server import GatewayServer

HERE = Path(__file__).parent / "fuzzing"
ROOT = Path(__file__).parents[2]


ADMIN_TOKEN = "schemathesis-admin-token"


def documented_operations(gateway: AsgiServer) -> list[str]:
    """``METHOD /path`` for every operation the served OpenAPI document lists."""
    document = httpx.get(f"{gateway.url}/schema/openapi.json", timeout=30).json()
    return [f"{method.upper()} {path}" for path, operations in document["paths"].items() for method in operations]


def schemathesis(gateway: AsgiServer, workdir: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """Run in ``workdir``: schemathesis keeps its crash cache in the working directory."""
    command = [
        str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(HERE / "schemathesis.toml"),
        "--no-color", "run", f"{gateway.url}/schema/openapi.json",
        "--checks", "all", "--max-examples", "10", "--seed", "1", "--workers", "1", "--generation-database", "none",
        *arguments,
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.e2e.fuzzing.hooks",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}

    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=workdir, check=False)


def test_schemathesis_finds_no_failure_in_the_make_run_gateway(tmp_path: Path) -> None:
    with GatewayServer(Settings()) as gateway:  # nothing configured: the simulators serve
        run = schemathesis(gateway, tmp_path)
        operations = documented_operations(gateway)

    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    assert len(operations) >= 13  # the image, model, usage, health and admin endpoints at least
    assert f"{len(operations)} selected" in run.stdout  # every documented operation was exercised


def test_schemathesis_finds_no_failure_in_the_admin_api(tmp_path: Path) -> None:
    with GatewayServer(Settings(admin_token=ADMIN_TOKEN)) as gateway:
        run = schemathesis(gateway, tmp_path, "--include-path-regex", "^/v1/admin/",
                           "-H", f"Authorization: Bearer {ADMIN_TOKEN}")
        admin = [operation for operation in documented_operations(gateway)
                 if operation.split()[1].startswith("/v1/admin/")]

    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    assert len(admin) == 4  # create, list and revoke keys; the charge log
    assert f"{len(admin)} selected" in run.stdout
