"""Any ASGI app served by uvicorn on a free loopback port, in a background thread."""

from __future__ import annotations

import asyncio
import threading
import time
from types import TracebackType

import uvicorn
from litestar.types import ASGIApp

from proxy.shutdown import where_each_waits

STOP_WAIT_S = 20.0
"""How long ``stop`` waits for the server's thread; a server still running then fails the test."""


class ServerDidNotStop(RuntimeError):
    """The server's thread outlived ``stop``: something in its shutdown waits without a bound."""


class AsgiServer:
    """``with AsgiServer(app) as server: server.url`` serves ``app`` until the block ends."""

    def __init__(self, app: ASGIApp, *, name: str = "asgi-under-test", config: uvicorn.Config | None = None) -> None:
        """``config`` replaces the plain one (the gateway passes its production configuration)."""
        config = config or uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name=name, daemon=True)
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> AsgiServer:
        self._thread.start()
        started = time.monotonic()
        while not self.server.started:
            if time.monotonic() - started > 30 or not self._thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        self._loop = self.server.servers[0].get_loop()
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for it; a server that hangs in its shutdown raises
        ``ServerDidNotStop`` naming what it still awaits, instead of being left running."""
        self.server.should_exit = True
        self._thread.join(timeout=STOP_WAIT_S)
        if self._thread.is_alive():
            raise ServerDidNotStop(f"{self._thread.name} did not stop within {STOP_WAIT_S:g} s; "
                                   f"still pending:\n{self._pending()}")

    def _pending(self) -> str:
        """Each task still pending in the server's loop, with the chain of coroutines it awaits."""
        if self._loop is None:
            return "(the loop is unknown)"
        return where_each_waits(asyncio.all_tasks(self._loop))

    def __enter__(self) -> AsgiServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()
