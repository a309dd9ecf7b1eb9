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

from tests.free_port import PortTaken, on_a_free_port, says_port_taken
from tests.several_addresses import BOLTGATE_RESOLVING_SEVERAL, SEVERAL, SEVERAL_ADDRESSES

ROOT = Path(__file__).parents[2]

AS_FROM_A_TERMINAL = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                      "from proxy.cli import main; sys.exit(main(sys.argv[1:]))")
"""``boltgate`` with SIGINT handled as Python does in a terminal. A child inherits an ignored
SIGINT (pytest-xdist's workers ignore it), and uvicorn hands the signal back to what it found
after its shutdown: ignored, the process would simply exit 0."""

HUMAN_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [A-Z]+ [\w.]+: ")


class Served:
    """One ``boltgate`` process and the lines it wrote so far (a thread appends them)."""

    def __init__(self, port: int, command: str, args: tuple[str, ...], env: dict[str, str],
                 *, interruptible: bool = False) -> None:
        self.url = f"http://127.0.0.1:{port}"
        python = ["-c", AS_FROM_A_TERMINAL] if interruptible else ["-m", "proxy.cli"]
        self.process = subprocess.Popen(
            [sys.executable, *python, command, "--port", str(port), *args], cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(
            target=lambda: self.lines.extend(line.rstrip("\n") for line in self.process.stdout or ()))
        self.reader.start()

    def stop(self) -> None:
        """SIGTERM, as Kubernetes stops a pod, then wait for the drain and for the last lines."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        finally:
            self.process.kill()
            self.reader.join(timeout=10)


def _started(port: int, command: str, args: tuple[str, ...], env: dict[str, str],
             *, interruptible: bool = False) -> Served:
    """A process on ``port`` once it answers; ``PortTaken`` when it exited because the port was taken."""
    served = Served(port, command, args, env, interruptible=interruptible)
    try:
        deadline = time.monotonic() + 60
        while not _answers(served.url):
            if served.process.poll() is not None:
                served.reader.join(timeout=10)  # every line it wrote before it exited
                if says_port_taken("\n".join(served.lines)):
                    raise PortTaken(f"port {port} was taken before boltgate {command} bound it")
            assert served.process.poll() is None and time.monotonic() < deadline, \
                "never answered:\n" + "\n".join(served.lines)
            time.sleep(0.05)
    except BaseException:
        served.stop()
        raise
    return served


@contextmanager
def serving(*args: str, command: str = "serve", port: int | None = None,
            **env: str) -> Iterator[tuple[str, list[str]]]:
    """``boltgate COMMAND ARGS`` on a free port with the suite's clean environment (no setting but
    the test's own data directory), once it answers; yields
    its URL and the lines it wrote so far (the list grows until the block ends, then holds all,
    through the drain that SIGTERM starts, as Kubernetes stops a pod). A port taken before the
    process bound it is replaced by a fresh one; ``port`` is the first tried (default: a free one)."""
    served = on_a_free_port(lambda picked: _started(picked, command, args, env), first=port)
    try:
        yield served.url, served.lines
    finally:
        served.stop()


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
    assert f"Uvicorn running on {url} (Press CTRL+C to quit)" in text  # what the README says to look for
    access = [line for line in lines if "boltgate.access" in line]
    assert len(access) == 1 and "POST /v1/images/generations status=200" in access[0]
    assert "Shutting down" in text and "Application shutdown complete" in text  # the drain on SIGTERM
    assert [line for line in lines if line and not HUMAN_LINE.match(line)] == []


def test_ctrl_c_drains_and_exits_130_without_a_traceback() -> None:
    served = on_a_free_port(lambda picked: _started(picked, "serve", (), {}, interruptible=True))
    try:
        served.process.send_signal(signal.SIGINT)
        assert served.process.wait(timeout=30) == 130
    finally:
        served.stop()
    text = "\n".join(served.lines)
    assert "Application shutdown complete" in text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text


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


def test_a_port_taken_before_the_server_binds_it_is_replaced_by_another() -> None:
    with socket.socket() as squatter:  # another process took the port between the pick and the bind
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]

        with serving(port=taken) as (url, lines):
            assert url != f"http://127.0.0.1:{taken}"
            assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
        assert "Uvicorn running on" in "\n".join(lines)


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["one process", "supervisor"])
@pytest.mark.parametrize(("host", "squatted"), [("127.0.0.1", "127.0.0.1"), (SEVERAL, SEVERAL_ADDRESSES[-1])],
                         ids=["the host's address", "a name's last address"])
def test_a_port_already_taken_is_one_line_and_exit_1_before_the_gateway_starts(
        tmp_path: Path, workers: list[str], host: str, squatted: str) -> None:
    (tmp_path / "tmp").mkdir()
    with socket.socket(socket.AF_INET6 if ":" in squatted else socket.AF_INET) as squatter:
        squatter.bind((squatted, 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        finished = subprocess.run(
            [sys.executable, "-c", BOLTGATE_RESOLVING_SEVERAL, "serve", "--host", host, "--port", str(taken),
             *workers], cwd=ROOT, timeout=60,
            capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
                                                 "BOLTGATE_DATA_DIR": str(tmp_path / "data"),
                                                 "TMPDIR": str(tmp_path / "tmp")},
        )

    assert finished.returncode == 1
    assert finished.stdout == ""  # nothing started: no simulator notice, no lifespan, no uvicorn lines
    assert list((tmp_path / "tmp").iterdir()) == []  # nothing made: no metrics directory
    assert not (tmp_path / "data").exists()
    assert finished.stderr.splitlines() == [
        f"boltgate serve: cannot listen on {host}:{taken}: Address already in use"], finished.stderr


@pytest.mark.parametrize(("workers", "where_it_serves"), [
    ([], "Uvicorn running on http://{host}:{port} (Press CTRL+C to quit)"),
    (["--workers", "2"], "boltgate serving on {host}:{port} with 2 workers"),
], ids=["one process", "supervisor"])
def test_a_host_name_is_served_on_every_address_it_resolves_to_and_port_0_is_logged_as_bound(
        tmp_path: Path, workers: list[str], where_it_serves: str) -> None:
    """As uvicorn served a name before boltgate bound the port itself (``localhost``: 127.0.0.1
    and ::1); every address on one port, which the log names, the kernel's pick for ``--port 0``."""
    process = subprocess.Popen(
        [sys.executable, "-c", BOLTGATE_RESOLVING_SEVERAL, "serve", "--host", SEVERAL, "--port", "0", *workers],
        cwd=ROOT, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "BOLTGATE_DATA_DIR": str(tmp_path)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(line.rstrip("\n") for line in process.stdout or ()))
    reader.start()
    said = re.compile(re.escape(where_it_serves.format(host=SEVERAL, port="PORT")).replace("PORT", r"(\d+)"))
    try:
        deadline = time.monotonic() + 60
        while not (found := [match for line in list(lines) if (match := said.search(line))]):
            assert process.poll() is None and time.monotonic() < deadline, "\n".join(lines)
            time.sleep(0.05)
        port = int(found[0].group(1))
        assert port != 0
        for address in SEVERAL_ADDRESSES:  # every one answers, on that port
            url = f"http://[{address}]:{port}" if ":" in address else f"http://{address}:{port}"
            while not _answers(url):
                assert process.poll() is None and time.monotonic() < deadline, (address, "\n".join(lines))
                time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        finally:
            process.kill()
            reader.join(timeout=10)


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
