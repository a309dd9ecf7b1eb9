"""start_on_a_free_port: the benchmarks' servers, handed back only once the process started is the
one listening on the port, on a fresh port when the one picked was taken meanwhile."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from bench.listening import listening_ports, process_tree, start_on_a_free_port
from tests.free_port import first_pick_taken


def simulator(port: int) -> list[str]:
    """What the benchmarks start: a vendor simulator on ``port``."""
    return [sys.executable, "-m", "backends.simulators", "--vendor", "callmissed", "--port-base", str(port)]


@contextmanager
def stopped_after(process: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_server_is_handed_back_listening_on_its_port() -> None:
    process, port = start_on_a_free_port(simulator, name="simulator")

    with stopped_after(process):
        assert port in listening_ports(process_tree(process.pid))
        assert httpx.get(f"http://127.0.0.1:{port}/_sim/requests").status_code == 200


def test_a_port_taken_before_the_server_bound_it_is_replaced_by_a_fresh_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Something already answers on the first pick: waiting for the port to answer would take the
    squatter for the server, while the server itself dies on its bind."""
    with first_pick_taken(monkeypatch) as taken:
        process, port = start_on_a_free_port(simulator, name="simulator")

    with stopped_after(process):
        assert port != taken
        assert listening_ports(process_tree(process.pid)) == {port}


def test_a_server_that_exits_for_another_reason_is_reported_and_not_started_again() -> None:
    commands: list[int] = []

    def failing(port: int) -> list[str]:
        commands.append(port)
        return [sys.executable, "-c", "import sys; print('no such model'); sys.exit(3)"]

    with pytest.raises(RuntimeError, match=r"(?s)exited at start \(status 3\).*no such model"):
        start_on_a_free_port(failing, name="server")
    assert len(commands) == 1
