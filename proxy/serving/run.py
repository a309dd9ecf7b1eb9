"""One gateway process serving on a port: what ``boltgate serve`` runs, once per worker.

``boltgate serve`` binds the port first (``proxy.serving.listening``); one worker serves on those
sockets, and the supervisor (``proxy.serving.supervisor``) runs exactly this in each worker on the
same ones, so one worker and N workers serve through the same path: uvicorn with the guarded
protocol and the limits of ``settings.server`` (``proxy.serving.config``), each limit per worker.
"""

from __future__ import annotations

import socket

import uvicorn

from proxy.serving.config import uvicorn_config
from proxy.settings import Settings

SHUTDOWN_MARGIN_S = 5.0
"""Drain time beyond the deadline: settling, storing images, answering."""


def serve(settings: Settings, host: str, port: int, sockets: list[socket.socket], *,
          announce: bool = True) -> None:
    """Serve on ``sockets`` (``proxy.serving.listening.bind``'s; ``port``, the one they share) until
    SIGTERM or SIGINT: on either, uvicorn stops accepting, lets requests in flight finish (each is
    bounded by the deadline) and runs the lifespan's shutdown; past the drain time it cancels what
    is left. ``announce``: log uvicorn's ``Uvicorn running on`` line once started (one worker; a
    supervisor's workers leave it to the supervisor's own line)."""
    server = AnnouncingServer if announce else uvicorn.Server
    server(server_config(settings, host, port)).run(sockets=sockets)


class AnnouncingServer(uvicorn.Server):
    """uvicorn's server, saying where it listens even on a socket it was handed.

    uvicorn logs ``Uvicorn running on http://HOST:PORT (Press CTRL+C to quit)`` once the app has
    started, but only on a port it binds itself (a handed socket, it assumes, was announced by a
    supervisor). ``boltgate serve`` binds the port before anything starts, so that a port taken
    is one line and exit 1; this puts back the line users and the README look for, at the same
    moment and in uvicorn's own words."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if sockets and self.started:
            self._log_started_message(sockets)


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
