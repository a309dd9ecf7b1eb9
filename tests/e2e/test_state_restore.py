"""``boltgate state restore`` against a real ``boltgate serve`` on the data directory: refused while
it runs (its workers hold the store open even when idle), made once it is stopped, and the
gateway started again serves on the restored store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from core.state.sqlite_database import DATABASE_NAME
from tests.e2e.gateway_process import REPO, GatewayProcess, settings_env


def boltgate(settings: dict[str, object], *args: str) -> subprocess.CompletedProcess[str]:
    """The ``boltgate`` command, as an operator runs it, with the gateway's settings."""
    env = {**os.environ, **settings_env(settings), "PYTHONPATH": str(REPO)}
    env.pop("BOLTGATE_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "proxy", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60, check=False)


@pytest.mark.parametrize("args", [[], ["--workers", "2"]], ids=["one process", "supervisor"])
def test_a_restore_is_refused_while_a_gateway_serves_on_the_store_and_made_once_it_is_stopped(
        tmp_path: Path, args: list[str]) -> None:
    data_dir = tmp_path / "data"
    settings: dict[str, object] = {"state_backend": "sqlite", "data_dir": str(data_dir), "simulators": "on"}
    backup = tmp_path / "backup.sqlite3"
    with GatewayProcess(settings, tmp_path / "gateway.log", args=args) as gateway:
        assert httpx.get(f"{gateway.base_url}/healthz", timeout=5).status_code == 200
        made = boltgate(settings, "state", "backup", str(backup))
        assert made.returncode == 0, made.stderr

        refused = boltgate(settings, "state", "restore", str(backup))

        assert refused.returncode == 1
        assert "is open in another process" in refused.stderr and "nothing was changed" in refused.stderr
        assert not list(data_dir.glob("*.before-restore-*"))
        assert httpx.get(f"{gateway.base_url}/readyz", timeout=5).status_code == 200  # still on its store

    restored = boltgate(settings, "state", "restore", str(backup))

    assert restored.returncode == 0, restored.stderr
    assert f"into {data_dir / DATABASE_NAME}" in restored.stdout
    with GatewayProcess(settings, tmp_path / "again.log") as again:
        assert httpx.get(f"{again.base_url}/readyz", timeout=5).status_code == 200
