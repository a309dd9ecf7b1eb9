"""A real, throwaway ``redis-server`` on loopback, for tests that must not mock Redis.

    with RedisServer() as url:          # or: server = RedisServer(); url = server.start()
        store = RedisStateStore.from_url(url)
        ...                              # server.stop() removes the process and its temp dir

No persistence by default (``--save "" --appendonly no``); ``RedisServer(appendonly=True)`` writes
an AOF (``appendfsync everysec``, as the Helm chart configures) in its temp working directory.
A free port on 127.0.0.1. Faults for outage tests, all on the real process:

    server.kill()       # SIGKILL, as a crash or an OOM kill would
    server.shut_down()  # SIGTERM, as a rolling restart does: the AOF is written out first
    server.restart()    # the same port and directory: with AOF on, the data comes back
    server.freeze()     # SIGSTOP: the port accepts connections, nothing answers
    server.thaw()       # SIGCONT

A missing binary raises ``RedisServerMissing`` naming the fix, so that a fixture fails loudly
instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from tests.free_port import PortTaken, on_a_free_port, says_port_taken

_DEBIAN_BINARY = "/usr/bin/redis-server"


class RedisServerMissing(RuntimeError):
    """No ``redis-server`` binary on this machine."""


def find_redis_server(search_path: str | None = None, debian_binary: str = _DEBIAN_BINARY) -> str:
    """On ``search_path`` (default ``$PATH``), else where Debian's package puts it."""
    found = shutil.which("redis-server", path=search_path) or (debian_binary if Path(debian_binary).exists() else None)
    if found is None:
        raise RedisServerMissing(
            "redis-server is not installed; the tests need a real one: "
            "`apt-get install -y redis-server` (the Makefile does this)"
        )
    return found


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process; ``start()`` returns its ``redis://`` URL once it answers PING."""

    def __init__(self, startup_timeout: float = 10.0, *, appendonly: bool = False) -> None:
        self._startup_timeout = startup_timeout
        self._appendonly = appendonly
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None
        self._port = 0
        self.url = ""

    def _spawn(self, port: int) -> subprocess.Popen[bytes]:
        assert self._workdir is not None
        persistence = ["--appendonly", "no"]
        if self._appendonly:
            persistence = ["--appendonly", "yes", "--appendfsync", "everysec"]
        return subprocess.Popen(
            [find_redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", *persistence,
             "--dir", str(self._workdir), "--logfile", str(self._workdir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def start(self) -> str:
        if self._process is not None:
            return self.url
        find_redis_server()
        self._workdir = Path(tempfile.mkdtemp(prefix="boltgate-redis-"))
        try:
            self._port = on_a_free_port(self._start_on)  # the free port may be taken before redis binds it
        except BaseException:
            self.stop()
            raise
        self.url = f"redis://127.0.0.1:{self._port}/0"
        return self.url

    def _start_on(self, port: int) -> int:
        """``port`` once redis answers PING on it; ``PortTaken`` when its log says the bind failed."""
        assert self._workdir is not None
        log = self._workdir / "redis.log"
        logged_before = log.stat().st_size if log.exists() else 0
        self._process = self._spawn(port)
        if self._wait_until_ready(port):
            return port
        self._kill()
        said = log.read_bytes()[logged_before:].decode(errors="replace") if log.exists() else ""
        if says_port_taken(said):
            raise PortTaken(f"port {port} was taken before redis-server bound it")
        raise RuntimeError(f"redis-server did not answer PING within {self._startup_timeout}s\n{said[-2000:]}")

    def _wait_until_ready(self, port: int) -> bool:
        assert self._process is not None
        give_up = time.monotonic() + self._startup_timeout
        while time.monotonic() < give_up:
            if self._process.poll() is not None:
                return False
            if _answers_ping(port):
                return True
            time.sleep(0.02)
        return False

    def aof_holds(self, text: bytes) -> bool:
        """Whether ``text`` has reached the append-only file. With ``appendfsync everysec`` Redis
        answers a write before it writes it to the file when a background fsync is slow (it may
        postpone the write up to two seconds), so a SIGKILL can lose the last acknowledged writes;
        a test of what survives a kill waits for them to be in the file first."""
        assert self._workdir is not None
        return any(text in path.read_bytes() for path in self._workdir.rglob("*.aof") if path.is_file())

    def _kill(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    @property
    def pid(self) -> int:
        assert self._process is not None, "the server is not running"
        return self._process.pid

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final write; what the AOF already holds is all that is left."""
        assert self._process is not None, "the server is not running"
        self._process.send_signal(signal.SIGKILL)
        self._process.wait()
        self._process = None

    def shut_down(self) -> None:
        """SIGTERM: Redis writes its append-only file out and exits; nothing it acknowledged is lost."""
        assert self._process is not None, "the server is not running"
        self._kill()

    def restart(self) -> None:
        """Start again on the same port and directory (after ``kill`` or ``shut_down``), once it answers PING."""
        assert self._process is None and self._workdir is not None, "kill() or shut_down() the server first"
        give_up = time.monotonic() + self._startup_timeout
        while True:  # the port may linger a moment after the kill
            self._process = self._spawn(self._port)
            if self._wait_until_ready(self._port):
                return
            self._kill()
            if time.monotonic() > give_up:
                raise RuntimeError(f"redis-server did not restart on port {self._port}")
            time.sleep(0.1)

    def freeze(self) -> None:
        """SIGSTOP: connections are still accepted by the kernel, but nothing is answered."""
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self._process is not None:
            self.thaw()  # a stopped process would not act on SIGTERM
        self._kill()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        self.url = ""

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
