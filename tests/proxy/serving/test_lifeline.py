"""A worker drains (SIGTERM to itself) once its supervisor's end of the lifeline is closed, and
not before; also when the supervisor was already gone before the worker started watching, the
race a poll of ``getppid`` loses. (The real supervisor SIGKILLed under a request in flight:
``tests/e2e/test_workers.py``.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from proxy.serving.lifeline import lifeline

ROOT = Path(__file__).parents[3]
WORKER = """
import signal, sys, threading
from multiprocessing.connection import Connection
from proxy.serving.lifeline import drain_when_cut

drained = threading.Event()
signal.signal(signal.SIGTERM, lambda signum, frame: drained.set())
drain_when_cut(Connection(int(sys.argv[1]), writable=False))
print("watching", flush=True)
print("drained" if drained.wait(60) else "still serving", flush=True)
"""


def start_worker(read_fd: int) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", WORKER, str(read_fd)], pass_fds=[read_fd], text=True,
                            stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_a_worker_drains_once_the_supervisors_end_is_closed_and_not_before() -> None:
    read_end, write_end = lifeline()
    worker = start_worker(read_end.fileno())
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline() == "watching\n"
        assert worker.poll() is None  # the line is open: the worker serves on

        write_end.close()  # what the kernel does when the supervisor dies, however it dies

        assert worker.stdout.readline() == "drained\n"
        assert worker.wait(timeout=30) == 0
    finally:
        worker.kill()
        read_end.close()


def test_a_worker_whose_supervisor_died_before_it_watched_drains_too() -> None:
    read_end, write_end = lifeline()
    write_end.close()
    worker = start_worker(read_end.fileno())
    try:
        out, _ = worker.communicate(timeout=30)
        assert out.splitlines() == ["watching", "drained"]
    finally:
        worker.kill()
        read_end.close()
