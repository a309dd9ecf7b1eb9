"""Any ASGI app served by uvicorn on a free loopback port, in a background thread."""

from __future__ import annotations

import threading
import time
from types import TracebackType

import uvicorn
from litestar.types import ASGIApp


class AsgiServer:
    """``with AsgiServer(app) as server: server.url`` serves ``app`` until the block ends."""

    def __init__(self, app: ASGIApp, *, name: str = "asgi-under-test", config: uvicorn.Config | None = None) -> None:
        """``config`` replaces the plain one (the gateway passes its production configuration)."""
        config = config or uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name=name, daemon=True)
        self.url = ""

    def start(self) -> AsgiServer:
        self._thread.start()
        started = time.monotonic()
        while not self.server.started:
            if time.monotonic() - started > 30 or not self._thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=20)

    def __enter__(self) -> AsgiServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()
