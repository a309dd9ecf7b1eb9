"""The worker app on a real loopback port: uvicorn in a thread, bound to 127.0.0.1 port 0."""

from __future__ import annotations

import threading
import time
from types import TracebackType

import uvicorn
from litestar import Litestar


class WorkerServer:
    """``with WorkerServer(app) as server: server.url`` serves ``app`` until the block ends."""

    def __init__(self, app: Litestar) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name="worker-under-test", daemon=True)
        self.url = ""

    def __enter__(self) -> WorkerServer:
        self._thread.start()
        started = time.monotonic()
        while not self.server.started:
            if time.monotonic() - started > 20 or not self._thread.is_alive():
                raise RuntimeError("the worker did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=20)
