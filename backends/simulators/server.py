"""Runs one simulator under uvicorn (uvloop + httptools) in a daemon thread with its own loop.

Tests and the ``make run`` demo start simulators in-process; the thread keeps the test's own
event loop free. ``refuse_connections`` closes the listening socket (connects get ECONNREFUSED)
and idle keep-alive connections, and ``accept_connections`` reopens it on the same port.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import threading
import time
from collections.abc import Iterable
from decimal import Decimal
from types import TracebackType
from typing import Any

import uvicorn

from backends.simulators.app import SimulatorApp
from backends.simulators.config import SimulatorConfig
from backends.simulators.faults import Fault
from backends.simulators.recording import RecordedRequest
from backends.simulators.state import SimulatorState, release_held
from backends.simulators.vendors import VENDORS, vendor_spec

_START_TIMEOUT_S = 10.0


class SimulatorServer:
    def __init__(
        self, vendor: str, config: SimulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.vendor = vendor
        self.spec = vendor_spec(vendor)
        self.config = config if config is not None else SimulatorConfig()
        self.state = SimulatorState(self.config)
        self.app = SimulatorApp(self.spec, self.state)
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failure: BaseException | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_key(self) -> str:
        return self.config.api_key

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.state.requests.snapshot()

    @property
    def cancels(self) -> list[str]:
        return self.state.cancels.snapshot()

    @property
    def billed_creates(self) -> int:
        """Creates this vendor accepted and bills, whether or not its answer got back (its bill)."""
        return self.state.billed_creates

    def billed_usd(self) -> Decimal:
        """What the jobs run here have cost so far, read or abandoned (job vendors only)."""
        return self.spec.billed_usd(self.state)

    def clear_requests(self) -> None:
        self.state.requests.clear()
        self.state.cancels.clear()

    def clear_jobs(self) -> None:
        """Forget every job and create (and so what they billed): a fresh account, for the next test."""
        self.state.jobs.clear()
        self.state.idempotent_answers.clear()
        self.state.billed_creates = 0

    def inject(self, *faults: Fault) -> None:
        for fault in faults:
            self.spec.check_fault(fault)
        self.state.faults.push(*faults)

    def clear_faults(self) -> None:
        self.state.faults.clear()

    def release_held(self) -> None:
        """Let the requests held by ``hold`` faults go on; later ones are held again."""
        if self._loop is None:
            raise RuntimeError(f"the {self.vendor} simulator is not running")
        self._loop.call_soon_threadsafe(release_held, self.state)

    def start(self) -> SimulatorServer:
        if self._thread is not None:
            raise RuntimeError(f"the {self.vendor} simulator is already started")
        sock = self._bind()
        config = uvicorn.Config(
            self.app,
            loop="uvloop",
            http="httptools",
            lifespan="off",
            # No logging set-up of its own: uvicorn's (levels, handlers) is process-wide, and the
            # gateway's startup lines were silenced when a simulator started inside its lifespan.
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=1,
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._run, args=(sock, config), name=f"simulator-{self.vendor}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the {self.vendor} simulator did not start") from self._failure
            time.sleep(0.002)
        return self

    def _bind(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        return sock

    def _run(self, sock: socket.socket, config: uvicorn.Config) -> None:
        try:
            with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
                runner.run(self._serve(sock))
        except BaseException as exc:  # reported by start() or stop(), never lost in the thread
            self._failure = exc

    async def _serve(self, sock: socket.socket) -> None:
        assert self._server is not None
        self._loop = asyncio.get_running_loop()
        self.state.closing = asyncio.Event()
        await self._server.serve(sockets=[sock])

    def stop(self) -> None:
        self._signal_stop()
        self._join()

    def _signal_stop(self) -> None:
        """Ask the loop to stop and let hanging requests go; uvicorn notices within 0.1 s."""
        if self._server is None:
            return
        if self._loop is not None and self.state.closing is not None:
            self._loop.call_soon_threadsafe(self.state.closing.set)
            self._loop.call_soon_threadsafe(self.state.release.set)
        self._server.should_exit = True

    def _join(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = self._loop = None

    def refuse_connections(self) -> None:
        self._in_loop(self._close_listeners())

    def accept_connections(self) -> None:
        self._in_loop(self._open_listener())

    def _in_loop(self, work: Any) -> None:
        if self._loop is None:
            work.close()
            raise RuntimeError(f"the {self.vendor} simulator is not running")
        asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout=5)

    async def _close_listeners(self) -> None:
        """Stop listening and close idle keep-alive connections, as a vendor that went down."""
        assert self._server is not None
        for listener in self._server.servers:
            listener.close()
        self._server.servers.clear()
        for connection in list(self._server.server_state.connections):
            connection.shutdown()  # idle ones close now, busy ones after their answer
        await asyncio.sleep(0.01)  # let the loop release the sockets before callers connect

    async def _open_listener(self) -> None:
        """Listen again on the same port, with the protocol factory uvicorn's startup builds."""
        server = self._server
        assert server is not None
        if server.servers:
            return
        config = server.config
        protocol = functools.partial(
            config.http_protocol_class,
            config=config,
            server_state=server.server_state,  # type: ignore[call-arg]
            app_state=server.lifespan.state,
        )
        listener = await asyncio.get_running_loop().create_server(protocol, sock=self._bind(), backlog=config.backlog)
        server.servers.append(listener)

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


def start_simulators(
    vendors: Iterable[str] = VENDORS,
    config: SimulatorConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port_base: int = 0,
) -> dict[str, SimulatorServer]:
    """Start one simulator per vendor, sharing ``config``; on failure none is left running.

    Ports are free ones, or ``port_base + i`` for the i-th vendor when ``port_base`` is set.
    """
    started: dict[str, SimulatorServer] = {}
    try:
        for index, vendor in enumerate(vendors):
            port = port_base + index if port_base else 0
            started[vendor] = SimulatorServer(vendor, config, host=host, port=port).start()
    except BaseException:
        stop_simulators(started.values())
        raise
    return started


def stop_simulators(servers: Iterable[SimulatorServer]) -> None:
    """Stop several at once: each takes ~0.2 s to wind down, so they do it in parallel."""
    servers = list(servers)
    for server in servers:
        server._signal_stop()
    for server in servers:
        server._join()
