"""A server process started on a free loopback port, handed back once *it* listens there.

Picking a port and starting a process on it are two steps; between them another process (one
of the other sessions' gateways or simulators on this machine) may take it. Waiting until
"something answers on the port" would then measure the other process, while ours dies on its
bind. So a start counts only when the port's listening socket belongs to the started process
(or a child of it: ``boltgate serve --workers N``), read from ``/proc``; a process that exits
saying the address is in use is started again on a fresh port, by the same retry the tests use
(``tests/free_port.py``: ``on_a_free_port``, ``wait_until_started``).

    simulator, port = start_on_a_free_port(lambda port: ["python", "-m", "backends.simulators", ...
                                                         "--port-base", str(port)], name="simulator")
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tree root: tests.free_port
from tests.free_port import on_a_free_port, wait_until_started

LISTEN = "0A"
"""The state of a listening socket in ``/proc/net/tcp`` and ``tcp6``."""
START_TIMEOUT_S = 60.0


def start_on_a_free_port(command: Callable[[int], Sequence[str]], *, name: str, timeout_s: float = START_TIMEOUT_S,
                         **popen: Any) -> tuple[subprocess.Popen[bytes], int]:
    """``command(port)`` started (``popen`` passed to ``subprocess.Popen``) and its port, once the
    process listens on that port; on a fresh port when the one picked was taken meanwhile.

    Its output goes to an unnamed temporary file (a pipe nobody reads could fill and stall it),
    read back only to say why it exited at start."""
    return on_a_free_port(lambda port: (_start_on(port, command, name, timeout_s, popen), port))


def _start_on(port: int, command: Callable[[int], Sequence[str]], name: str, timeout_s: float,
              popen: dict[str, Any]) -> subprocess.Popen[bytes]:
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(list(command(port)), stdout=output, stderr=subprocess.STDOUT, **popen)

        def said() -> str:
            output.seek(0)
            return output.read().decode(errors="replace")

        wait_until_started(process, port, ready=lambda: port in listening_ports(process_tree(process.pid)),
                           output=said, name=name, timeout_s=timeout_s)
        return process  # it keeps writing to the file, which goes once it exits


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a supervisor's workers); none of a process that is gone."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    found = [pid]
    for child in children:
        found.extend(process_tree(int(child)))
    return found


def listening_ports(pids: Sequence[int]) -> set[int]:
    """The TCP ports (IPv4 or IPv6) on which a socket of one of ``pids`` listens."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            descriptors = os.listdir(f"/proc/{pid}/fd")
        except OSError:  # gone meanwhile
            continue
        for descriptor in descriptors:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{descriptor}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target.removeprefix("socket:[").removesuffix("]"))
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:  # no IPv6 on this machine
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == LISTEN and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports
