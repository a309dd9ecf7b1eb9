"""``boltgate serve`` as a newcomer runs it (``make run``: no keys, the simulators): the startup
lines say the server is up and where, every line is in one format, and each request leaves one
access line. Real processes on loopback."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson
import pytest

ROOT = Path(__file__).parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


HUMAN_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [A-Z]+ [\w.]+: ")


@contextmanager
def serving(*args: str, command: str = "serve", **env: str) -> Iterator[tuple[str, list[str]]]:
    """``boltgate COMMAND ARGS`` on a free port with the suite's clean environment (no setting but
    the test's own data directory), once it answers; yields
    its URL and the lines it wrote so far (the list grows until the block ends, then holds all,
    through the drain that SIGTERM starts, as Kubernetes stops a pod)."""
    url = f"http://127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [sys.executable, "-m", "proxy.cli", command, "--port", url.rsplit(":", 1)[1], *args], cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(line.rstrip("\n") for line in process.stdout or ()))
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not _answers(url):
            assert process.poll() is None and time.monotonic() < deadline, "never answered:\n" + "\n".join(lines)
            time.sleep(0.05)
        yield url, lines
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        finally:
            process.kill()
            reader.join(timeout=10)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_startup_lines_show_in_simulator_mode_and_every_line_is_one_format() -> None:
    with serving() as (url, lines):
        assert httpx.post(f"{url}/v1/images/generations", json={"prompt": "a fox", "size": "256x256"},
                          timeout=30).status_code == 200

    text = "\n".join(lines)
    assert "serving from the built-in vendor simulators" in text
    assert "Application startup complete" in text
    assert "Uvicorn running on" in text
    access = [line for line in lines if "boltgate.access" in line]
    assert len(access) == 1 and "POST /v1/images/generations status=200" in access[0]
    assert "Shutting down" in text and "Application shutdown complete" in text  # the drain on SIGTERM
    assert [line for line in lines if line and not HUMAN_LINE.match(line)] == []


def test_json_logs_are_one_object_per_line() -> None:
    with serving(BOLTGATE_LOG_FORMAT="json") as (url, lines):
        httpx.get(f"{url}/v1/models", timeout=30)

    records = [orjson.loads(line) for line in lines if line]
    assert {"Application startup complete.", "GET /v1/models"} <= {record["message"] for record in records}
    assert all({"time", "level", "logger", "message"} <= set(record) for record in records)


def test_log_level_and_public_base_url_flags_are_honoured() -> None:
    with serving("--log-level", "warning", "--public-base-url", "https://images.example.com/") as (url, lines):
        response = httpx.post(f"{url}/v1/images/generations", json={"prompt": "a fox", "size": "256x256"}, timeout=30)

    assert response.json()["data"][0]["url"].startswith("https://images.example.com/v1/images/files/")
    assert lines and not any(" INFO " in line for line in lines)  # the simulator notice is a warning


@pytest.mark.local  # torch and diffusers
def test_the_gpu_worker_logs_in_the_same_format(tmp_path: Path) -> None:
    from backends.local.tiny import make_tiny_model

    model = make_tiny_model(tmp_path / "tiny")
    with serving("--model-dir", str(model), "--device", "cpu", "--preload-steps", "1", "--no-warmup",
                 command="worker") as (url, lines):
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200

    text = "\n".join(lines)
    assert "Uvicorn running on" in text and "Application shutdown complete" in text
    assert "no worker token" in text  # the worker's own warning, on loopback without a token
    assert [line for line in lines if line and not HUMAN_LINE.match(line)] == []
