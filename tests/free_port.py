"""A free loopback port for a server that binds it later, and a retry for when it was taken meanwhile.

Picking a port (bind 0, read it, close) and starting a server on it are two steps; between them
another process (an xdist worker starting its own server) may take it. A start that says the
address is in use raises ``PortTaken``, and ``on_a_free_port`` calls it again on a fresh port:

    process = on_a_free_port(start)     # start(port) returns once the server answers

The benchmarks start their servers through the same retry (``bench/listening.py``), so this
module needs nothing but the standard library at run time.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:  # only first_pick_taken's annotation: the benchmarks (bench/listening.py) import this without pytest
    import pytest

PORT_TRIES = 3
"""Ports tried in all: one taken port is bad luck, three in a row are a fault worth seeing."""

T = TypeVar("T")


class PortTaken(RuntimeError):
    """The server could not bind its port: another process took it after it was picked."""


def free_port() -> int:
    """A port nothing listens on now (not held: whoever binds it next gets it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def says_port_taken(output: str) -> bool:
    """Whether a server's output reports a failed bind (uvicorn's, redis's, Prometheus's all say it so)."""
    return "address already in use" in output.lower()


def on_a_free_port(start: Callable[[int], T], *, first: int | None = None, tries: int = PORT_TRIES) -> T:
    """``start(port)`` on ``first`` (default: a free port), then on fresh ones while it raises ``PortTaken``.

    The last ``PortTaken`` propagates: a port taken ``tries`` times running is not a race.
    """
    port = free_port() if first is None else first
    for _ in range(tries - 1):
        try:
            return start(port)
        except PortTaken:
            port = free_port()
    return start(port)


def wait_until_started(process: subprocess.Popen[bytes], port: int, *, ready: Callable[[], bool],
                       output: Callable[[], str], name: str, timeout_s: float) -> None:
    """Return once ``ready()`` (the process listens on ``port``, by whatever sign it gives);
    ``PortTaken`` when it exited saying its port was taken meanwhile, ``RuntimeError`` with the
    end of its ``output()`` when it exited otherwise, or when it was not ready within ``timeout_s``
    (then it is killed)."""
    give_up = time.monotonic() + timeout_s
    while not ready():
        if process.poll() is not None:
            said = output()
            if says_port_taken(said):
                raise PortTaken(f"port {port} was taken before the {name} bound it")
            raise RuntimeError(f"the {name} exited at start (status {process.returncode}):\n{said[-4000:]}")
        if time.monotonic() > give_up:
            process.kill()
            process.wait()
            raise RuntimeError(f"the {name} did not listen on port {port} within {timeout_s:g} s")
        time.sleep(0.05)


@contextmanager
def first_pick_taken(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """The race, made to happen: the next ``free_port()`` answers a port another socket listens
    on (held until the block ends); the picks after it are fresh. Yields the taken port."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken: int = squatter.getsockname()[1]
        fresh = free_port
        picks = iter([taken])
        monkeypatch.setattr(sys.modules[__name__], "free_port", lambda: next(picks, None) or fresh())
        yield taken
