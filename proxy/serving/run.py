"""One gateway process serving on a port: what ``boltgate serve`` runs, once per worker.

The supervisor (``proxy.serving.supervisor``) runs exactly this in each worker, on the socket it
bound, so one worker and N workers serve through the same path: uvicorn with the guarded
protocol and the limits of ``settings.server`` (``proxy.serving.config``), each limit per worker.
"""

from __future__ import annotations

import socket

import uvicorn

from proxy.serving.config import LISTEN_BACKLOG, uvicorn_config
from proxy.settings import Settings

SHUTDOWN_MARGIN_S = 5.0
"""Drain time beyond the deadline: settling, storing images, answering."""


def serve(settings: Settings, host: str, port: int, sockets: list[socket.socket] | None = None) -> None:
    """Serve until SIGTERM or SIGINT: on either, uvicorn stops accepting, lets requests in flight
    finish (each is bounded by the deadline) and runs the lifespan's shutdown; past the drain
    time it cancels what is left."""
    uvicorn.Server(server_config(settings, host, port)).run(sockets=sockets)


def server_config(settings: Settings, host: str, port: int) -> uvicorn.Config:
    """The gateway's app under uvicorn. A proxy's forwarded headers are read only while they can
    matter: the gateway uses the client's address nowhere, and the request's scheme only for the
    base of image URLs, which ``public_base_url`` fixes when it is set (``proxy.images.links``)."""
    from proxy.api.app import create_app

    return uvicorn_config(create_app(settings), settings.server, host=host, port=port,
                          log_level=settings.log_level, graceful_shutdown_s=drain_seconds(settings),
                          forwarded_headers=settings.public_base_url is None)


def drain_seconds(settings: Settings) -> int:
    return round(settings.deadline_s + SHUTDOWN_MARGIN_S)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket the workers share (each accepts from the one queue)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock
