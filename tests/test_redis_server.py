"""RedisServer starts even when the free port it picked is taken before redis-server binds it."""

from __future__ import annotations

import socket

import pytest
import redis

from tests.free_port import first_pick_taken
from tests.redis_server import RedisServer, find_redis_server

pytestmark = pytest.mark.redis


def test_a_port_taken_before_redis_binds_it_is_replaced_by_another(monkeypatch: pytest.MonkeyPatch) -> None:
    find_redis_server()
    with first_pick_taken(monkeypatch) as taken:  # another process took it between the pick and the bind

        server = RedisServer()
        with server as url:
            assert url.startswith("redis://127.0.0.1:") and f":{taken}/" not in url
            with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1].split("/")[0])), timeout=5) as conn:
                conn.sendall(b"PING\r\n")
                assert conn.recv(16).startswith(b"+PONG")


def test_a_shut_down_server_restarts_with_everything_it_acknowledged() -> None:
    """SIGTERM writes the AOF out first (a SIGKILL may lose the last second of writes)."""
    server = RedisServer(appendonly=True)
    url = server.start()
    try:
        client = redis.Redis.from_url(url)
        client.set("written", "kept")
        server.shut_down()
        server.restart()
        assert client.get("written") == b"kept"
        client.close()
    finally:
        server.stop()
