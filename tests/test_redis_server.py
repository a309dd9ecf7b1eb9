"""RedisServer starts even when the free port it picked is taken before redis-server binds it."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

import tests.free_port
from tests.redis_server import RedisServer, find_redis_server

pytestmark = pytest.mark.redis


def test_a_port_taken_before_redis_binds_it_is_replaced_by_another(monkeypatch: pytest.MonkeyPatch) -> None:
    find_redis_server()
    with socket.socket() as squatter:  # another process took the port between the pick and the bind
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        fresh = tests.free_port.free_port
        picks: Iterator[int] = iter([taken])
        monkeypatch.setattr(tests.free_port, "free_port", lambda: next(picks, None) or fresh())

        server = RedisServer()
        with server as url:
            assert url.startswith("redis://127.0.0.1:") and f":{taken}/" not in url
            with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1].split("/")[0])), timeout=5) as conn:
                conn.sendall(b"PING\r\n")
                assert conn.recv(16).startswith(b"+PONG")
