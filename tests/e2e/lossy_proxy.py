"""A loopback TCP relay that loses answers: the request reaches the server, the reply never
reaches the client.

The gateway charges before it answers, so a reply lost on the way back is the failure that makes
a client pay twice if it retries without its ``Idempotency-Key``. ``drop_replies(n)`` makes the
next ``n`` replies vanish: when the server's first bytes arrive, the client's connection is reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading


class LossyProxy:
    def __init__(self, upstream_port: int) -> None:
        self._upstream_port = upstream_port
        self._to_drop = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="lossy-proxy", daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def drop_replies(self, count: int) -> None:
        with self._lock:
            self._to_drop = count

    def _take_drop(self) -> bool:
        with self._lock:
            if self._to_drop <= 0:
                return False
            self._to_drop -= 1
            self.dropped += 1
            return True

    def start(self) -> LossyProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._relay, "127.0.0.1", 0), self._loop).result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self._upstream_port)

        async def forward_requests() -> None:
            while data := await client_reader.read(65536):
                upstream_writer.write(data)
                await upstream_writer.drain()

        async def forward_replies() -> None:
            while data := await upstream_reader.read(65536):
                if self._take_drop():
                    sock = client_writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    client_writer.transport.abort()  # a reset: the reply is lost
                    return
                client_writer.write(data)
                await client_writer.drain()

        tasks = [asyncio.ensure_future(forward_requests()), asyncio.ensure_future(forward_replies())]
        with contextlib.suppress(Exception):
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for writer in (client_writer, upstream_writer):
            with contextlib.suppress(Exception):
                writer.close()
