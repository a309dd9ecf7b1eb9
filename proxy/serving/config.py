"""The uvicorn configuration ``boltgate serve`` runs with, from the settings (tests use it too)."""

from __future__ import annotations

import logging
import resource
from typing import Any, Literal

import uvicorn

from proxy.serving.guarded_protocol import guarded_protocol
from proxy.settings import ServerConfig

log = logging.getLogger("boltgate")

LISTEN_BACKLOG = 4096
"""Connections the kernel queues before they are accepted (capped by ``net.core.somaxconn``):
a burst of 2,000 new clients is queued, not refused, while the workers accept them."""


def connection_cap(limits: ServerConfig) -> ServerConfig:
    """``limits`` with ``max_connections`` at most three quarters of the file descriptor limit: the
    rest stays for vendor connections, Redis and files, so the cap is reached before the limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and limits.max_connections > soft * 3 // 4:
        log.warning("max_connections %d lowered to %d (three quarters of the file descriptor limit %d)",
                    limits.max_connections, soft * 3 // 4, soft)
        return limits.model_copy(update={"max_connections": max(1, soft * 3 // 4)})
    return limits


def uvicorn_config(app: Any, limits: ServerConfig, *, host: str, port: int, log_level: str = "info",
                   lifespan: Literal["auto", "on", "off"] = "auto", graceful_shutdown_s: int | None = None,
                   forwarded_headers: bool = True) -> uvicorn.Config:
    """``graceful_shutdown_s``: how long a stop waits for requests in flight before cancelling them;
    ``forwarded_headers``: whether uvicorn's ``ProxyHeadersMiddleware`` takes the scheme and client
    from a trusted proxy's ``X-Forwarded-Proto`` and ``X-Forwarded-For`` (``proxy_headers``), a
    layer every request passes through."""
    limits = connection_cap(limits)
    return uvicorn.Config(
        app, host=host, port=port, loop="uvloop", http=guarded_protocol(limits), lifespan=lifespan,
        # The one log format is core.logs' (configured by the CLI); boltgate writes its own access lines.
        access_log=False, log_config=None, log_level=log_level, timeout_keep_alive=int(limits.keep_alive_s),
        timeout_graceful_shutdown=graceful_shutdown_s, backlog=LISTEN_BACKLOG, proxy_headers=forwarded_headers,
    )
