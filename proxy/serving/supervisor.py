"""``boltgate serve --workers N``: N worker processes accepting on one socket, kept running.

The supervisor is handed the port, bound once (``proxy.serving.listening.bind``, which ``boltgate
serve`` calls before anything starts, so a port taken is refused alike for one worker or N: one
socket per address the host resolves to), and starts N workers (``spawn``: fresh interpreters,
nothing inherited but the sockets and the environment). Each runs ``proxy.serving.run.serve`` on
those sockets with its own event loop; the kernel hands each new connection to one worker that is
waiting in ``accept``. The workers share state through the configured store (the SQLite file or
Redis), never through memory.

- A worker that dies is replaced (its live gauges are dropped from ``/metrics``); one that dies
  within ``QUICK_DEATH_S`` of starting, ``QUICK_DEATHS`` times in a row, stops the supervisor:
  a worker that cannot start (bad settings, port) would otherwise be restarted forever.
- SIGTERM or SIGINT: the supervisor closes its copies of the sockets and passes SIGTERM on; each
  worker stops accepting, finishes its requests in flight and exits; a worker still running
  after the drain time is killed.
- A worker whose supervisor is gone (SIGKILLed, the OOM killer) drains and exits on its own: it
  sees end-of-file on a pipe only the supervisor holds open (``proxy.serving.lifeline``, which
  says why a pipe and not ``PR_SET_PDEATHSIG``), so the port is not left served with nobody
  supervising.
- Metrics: ``PROMETHEUS_MULTIPROC_DIR`` is a fresh directory for the run (or the one the
  environment names, emptied at start), so ``/metrics`` sums this run's workers only. A fresh one
  is removed at the end, and one left by a supervisor killed outright is removed by the next.
"""

from __future__ import annotations

import fcntl
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import IO, Any

from proxy.serving.lifeline import drain_when_cut, lifeline
from proxy.serving.listening import where

log = logging.getLogger("boltgate")

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
METRICS_DIR_PREFIX = "boltgate-metrics-"
OWNER_LOCK = "supervisor.lock"
"""In a metrics directory the supervisor made: locked for as long as that supervisor runs."""
"""prometheus_client's multiprocess mode: where each worker writes its values (read by ``proxy.metrics_exposition``)."""

QUICK_DEATH_S = 10.0
QUICK_DEATHS = 3
POLL_S = 0.2


@dataclass
class Supervisor:
    overrides: dict[str, Any]
    """Settings given on the command line (the rest comes from the environment and the file)."""
    sockets: list[socket.socket]
    """The listening sockets the workers share; the supervisor closes its copies when it stops."""
    host: str
    port: int
    """The port the sockets are bound to (never 0: the kernel's pick, for ``--port 0``)."""
    workers: int
    drain_s: float
    _stopping: threading.Event = field(default_factory=threading.Event)
    _processes: dict[int, tuple[BaseProcess, float]] = field(default_factory=dict)
    _lifeline: tuple[Connection, Connection] = field(default_factory=lifeline)
    """Read end (each worker's), write end (held here for life, never written): ``proxy.serving.lifeline``."""

    def run(self) -> int:
        metrics_dir, owned = prepare_metrics_dir()
        os.environ[MULTIPROC_DIR_VARIABLE] = str(metrics_dir)
        os.environ["BOLTGATE_WORKERS"] = str(self.workers)  # the workers see how many they are
        context = multiprocessing.get_context("spawn")
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        log.info("boltgate serving on %s with %d workers", where(self.host, self.port), self.workers)
        try:
            for slot in range(self.workers):
                self._start(context, slot)
            status = self._watch(context)
        finally:
            for sock in self.sockets:
                sock.close()
            self._drain()
            if owned:
                shutil.rmtree(metrics_dir, ignore_errors=True)
        return status

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping.set()

    def _start(self, context: Any, slot: int) -> None:
        process = context.Process(target=worker_main,
                                  args=(self.overrides, self.host, self.port, self.sockets, self._lifeline[0]),
                                  name=f"boltgate-worker-{slot}")
        process.start()
        self._processes[slot] = (process, time.monotonic())

    def _watch(self, context: Any) -> int:
        quick_deaths = 0
        while not self._stopping.wait(POLL_S):
            for slot, (process, started) in list(self._processes.items()):
                if process.is_alive():
                    continue
                mark_dead(process.pid)
                quick = time.monotonic() - started < QUICK_DEATH_S
                quick_deaths = quick_deaths + 1 if quick else 0
                if quick_deaths >= QUICK_DEATHS:
                    log.error("worker %s exited with %s right after starting, %d times in a row: stopping",
                              process.pid, process.exitcode, quick_deaths)
                    return 1
                log.warning("worker %s exited with %s; starting another", process.pid, process.exitcode)
                self._start(context, slot)
        return 0

    def _drain(self) -> None:
        """SIGTERM to every worker, then wait for them to finish their requests in flight."""
        for process, _ in self._processes.values():
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        give_up = time.monotonic() + self.drain_s
        for process, _ in self._processes.values():
            process.join(max(0.0, give_up - time.monotonic()))
            if process.is_alive():
                log.error("worker %s still running after %.0fs of drain: killed", process.pid, self.drain_s)
                process.kill()
                process.join()


def prepare_metrics_dir() -> tuple[Path, bool]:
    """The run's metrics directory, empty; True when the supervisor made it (and removes it)."""
    named = os.environ.get(MULTIPROC_DIR_VARIABLE)
    if not named:
        remove_abandoned_metrics_dirs(Path(tempfile.gettempdir()))
        directory = Path(tempfile.mkdtemp(prefix=METRICS_DIR_PREFIX))
        _hold_for_life(directory / OWNER_LOCK)
        return directory, True
    directory = Path(named)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):  # a previous run's counts would be summed with this one's
        stale.unlink()
    return directory, False


def remove_abandoned_metrics_dirs(parent: Path) -> None:
    """Remove the metrics directories of supervisors that are gone without removing their own
    (killed outright: an OOM kill of the container). Each holds the lock of its ``OWNER_LOCK``
    for life, and the kernel drops it however the process dies, so a directory whose lock can be
    taken is abandoned. Without this, every such kill would leave its workers' files in the pod's
    ``/tmp`` (an ``emptyDir`` with a size limit, which outlives the container) until the pod is
    evicted for it. A directory without the lock file (made before it existed) is left alone."""
    for directory in parent.glob(f"{METRICS_DIR_PREFIX}*"):
        try:
            with (directory / OWNER_LOCK).open("rb") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(directory, ignore_errors=True)
        except OSError:  # no lock file, or its owner runs (BlockingIOError)
            continue
        log.info("removed %s, left by a supervisor that was killed", directory)


_LOCKS_HELD: list[IO[bytes]] = []
"""Files whose lock this process holds until it exits (closed, a file would let its lock go)."""


def _hold_for_life(path: Path) -> None:
    lock = path.open("wb")
    fcntl.flock(lock, fcntl.LOCK_EX)
    _LOCKS_HELD.append(lock)


def mark_dead(pid: int | None) -> None:
    if pid is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, os.environ[MULTIPROC_DIR_VARIABLE])  # type: ignore[no-untyped-call]


def worker_main(overrides: dict[str, Any], host: str, port: int, sockets: list[socket.socket],
                lifeline_read_end: Connection) -> None:
    """One worker: the settings, read again in this process, served on the inherited sockets until
    SIGTERM, which the supervisor passes on, or which the worker sends itself once the supervisor
    is gone (``lifeline_read_end`` at end-of-file)."""
    from core.logs import configure_logging
    from proxy.serving.run import serve
    from proxy.settings import Settings

    settings = Settings(**overrides)
    configure_logging(settings.log_level, settings.log_format)
    drain_when_cut(lifeline_read_end)
    serve(settings, host, port, sockets, announce=False)
