"""on_a_free_port: a start that finds its port taken is tried again on a fresh one, a few times only."""

from __future__ import annotations

import pytest

from tests.free_port import PORT_TRIES, PortTaken, on_a_free_port, says_port_taken


def test_a_taken_port_is_replaced_by_a_fresh_one() -> None:
    tried: list[int] = []

    def start(port: int) -> int:
        tried.append(port)
        if len(tried) == 1:
            raise PortTaken(f"port {port} was taken")
        return port

    assert on_a_free_port(start, first=1) == tried[1]
    assert tried[0] == 1 and tried[1] != 1


def test_a_port_taken_every_time_is_reported_after_the_last_try() -> None:
    tried: list[int] = []

    def start(port: int) -> int:
        tried.append(port)
        raise PortTaken(f"port {port} was taken")

    with pytest.raises(PortTaken):
        on_a_free_port(start)
    assert len(tried) == PORT_TRIES


def test_any_other_failure_is_not_retried() -> None:
    tried: list[int] = []

    def start(port: int) -> int:
        tried.append(port)
        raise RuntimeError("the server crashed")

    with pytest.raises(RuntimeError, match="crashed"):
        on_a_free_port(start)
    assert len(tried) == 1


@pytest.mark.parametrize("output", [
    "ERROR:    [Errno 98] error while attempting to bind on address ('127.0.0.1', 8000): address already in use",
    "# Warning: Could not create server TCP listening socket 127.0.0.1:6379: bind: Address already in use",
    'err="listen tcp 127.0.0.1:9090: bind: address already in use"',
], ids=["uvicorn", "redis", "prometheus"])
def test_each_servers_bind_failure_is_recognised(output: str) -> None:
    assert says_port_taken(output)
    assert not says_port_taken(output.replace("already in use", "not available"))
