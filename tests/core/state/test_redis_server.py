"""The test helper ``tests/redis_server.py``: a real server that starts, answers, and leaves nothing."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import redis

from tests.redis_server import RedisServer, RedisServerMissing, find_redis_server

pytestmark = pytest.mark.redis


def test_start_returns_a_loopback_url_that_answers_and_stop_removes_everything() -> None:
    server = RedisServer()
    url = server.start()
    try:
        assert url.startswith("redis://127.0.0.1:")
        with redis.Redis.from_url(url, decode_responses=True) as client:
            assert client.ping() is True
            assert client.config_get("save") == {"save": ""}
            assert client.config_get("appendonly") == {"appendonly": "no"}
            workdir = Path(client.config_get("dir")["dir"])
        assert workdir.is_dir()
    finally:
        server.stop()
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        pass
    assert not workdir.exists()


def test_context_manager_yields_the_url_and_stops_on_exit() -> None:
    with RedisServer() as url, redis.Redis.from_url(url) as client:
        assert client.ping() is True
    with pytest.raises(redis.ConnectionError), redis.Redis.from_url(url) as client:
        client.ping()


def test_a_missing_binary_is_reported_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(RedisServerMissing, match="apt-get install -y redis-server"):
        find_redis_server(search_path=str(tmp_path), debian_binary=str(tmp_path / "redis-server"))


def test_the_binary_on_the_search_path_wins(tmp_path: Path) -> None:
    binary = tmp_path / "redis-server"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    assert find_redis_server(search_path=str(tmp_path), debian_binary="/nonexistent") == str(binary)
