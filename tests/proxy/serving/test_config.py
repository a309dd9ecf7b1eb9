"""The server configuration ``boltgate serve`` runs with."""

from __future__ import annotations

import resource

import pytest

from proxy.serving.config import connection_cap, uvicorn_config
from proxy.serving.guarded_protocol import GuardedHttpToolsProtocol
from proxy.settings import ServerConfig


def test_the_connection_cap_stays_below_the_file_descriptor_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, 4096))
    assert connection_cap(ServerConfig(max_connections=2048)).max_connections == 768
    assert connection_cap(ServerConfig(max_connections=100)).max_connections == 100


def test_the_guarded_protocol_carries_the_settings() -> None:
    limits = ServerConfig(max_header_bytes=4096, keep_alive_s=12)
    config = uvicorn_config(object(), limits, host="127.0.0.1", port=0)
    assert isinstance(config.http, type) and issubclass(config.http, GuardedHttpToolsProtocol)
    assert config.http.limits.max_header_bytes == 4096
    assert config.timeout_keep_alive == 12
