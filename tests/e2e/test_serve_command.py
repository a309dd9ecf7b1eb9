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

ROOT = Path(__file__).parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serving(*args: str, **env: str) -> Iterator[tuple[str, list[str]]]:
    """``boltgate serve ARGS`` on a free port with a clean environment, once it answers; yields its
    URL and the lines it wrote so far (the list grows until the block ends, then holds all)."""
    clean = {name: value for name, value in os.environ.items()
             if not name.startswith("BOLTGATE_") and not name.endswith("_API_KEY")}
    url = f"http://127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [sys.executable, "-m", "proxy.cli", "serve", "--port", url.rsplit(":", 1)[1], *args], cwd=ROOT,
        env={**clean, "PYTHONPATH": str(ROOT), **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
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
        process.send_signal(signal.SIGINT)
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
    human = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [A-Z]+ [\w.]+: ")
    assert [line for line in lines if line and not human.match(line)] == []


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
