"""``boltgate serve`` in a process of its own, so that a test can SIGKILL or SIGTERM it for real.

Settings reach it as ``BOLTGATE_*`` environment variables (lists and tables as JSON), exactly as
the Helm chart passes them; everything it logs goes to ``log_path``. ``own_group``: in a process
group of its own, so that ``kill_group`` kills a ``--workers`` supervisor with every worker at once,
as a container's end does (a supervisor killed alone leaves workers holding the port while they drain).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from tests.free_port import PortTaken, free_port, on_a_free_port, says_port_taken

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60.0


def settings_env(settings: dict[str, object]) -> dict[str, str]:
    """``{"deadline_s": 5, "routes": [...]}`` as ``BOLTGATE_DEADLINE_S=5``, ``BOLTGATE_ROUTES=[...]``."""
    return {f"BOLTGATE_{name.upper()}": value if isinstance(value, str) else json.dumps(value)
            for name, value in settings.items()}


class GatewayProcess:
    def __init__(self, settings: dict[str, object], log_path: Path, env: dict[str, str] | None = None,
                 args: list[str] | None = None, *, own_group: bool = False) -> None:
        self.settings = settings
        self.args = args or []
        self.own_group = own_group
        self.log_path = log_path
        self.extra_env = env or {}
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> GatewayProcess:
        """Start it and wait until it answers; on a fresh port when the picked one was taken."""
        return on_a_free_port(self._start_on_port, first=self.port)

    def _start_on_port(self, port: int) -> GatewayProcess:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        env = {**os.environ, **settings_env(self.settings), **self.extra_env,
               "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        logged_before = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "proxy", "serve", "--host", "127.0.0.1", "--port", str(self.port), *self.args],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=self.own_group,
            )
        give_up = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < give_up:
            if self._process.poll() is not None:
                said = self.log_path.read_bytes()[logged_before:].decode(errors="replace")
                if says_port_taken(said):  # uvicorn's bind error, or the supervisor's
                    raise PortTaken(f"port {self.port} was taken before the gateway bound it")
                raise RuntimeError(f"the gateway exited at start:\n{self.log()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the gateway did not start within {START_TIMEOUT_S}s:\n{self.log()}")

    def again(self) -> GatewayProcess:
        """The same gateway (settings, arguments, log), not started, to start on this port again."""
        process = GatewayProcess(self.settings, self.log_path, self.extra_env, self.args, own_group=self.own_group)
        process.port = self.port
        return process

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown at all, as the kubelet does when the grace period runs out."""
        assert self._process is not None
        self._process.send_signal(signal.SIGKILL)
        self._process.wait()

    def kill_group(self) -> None:
        """SIGKILL to its whole process group (``own_group``): the supervisor and its workers."""
        assert self._process is not None and self.own_group
        os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait()

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def terminate(self) -> None:
        """SIGTERM: what Kubernetes sends first (after the preStop hook)."""
        assert self._process is not None
        self._process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        assert self._process is not None
        return self._process.wait(timeout=timeout)

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()
