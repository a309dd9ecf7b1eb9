"""A loopback TCP relay that loses answers: the request reaches the server, the reply never
reaches the client.

The gateway charges before it answers, so a reply lost on the way back is the failure that makes
a client pay twice if it retries without its ``Idempotency-Key``. ``drop_replies(n)`` makes the
next ``n`` replies vanish: when the server's first bytes arrive, the client's connection is reset.

Between the gateway and its state store (Redis) the relay is the network failing at the worst
moment: ``cut_at(marker)`` arms it for the next request whose bytes hold ``marker`` (a Lua
script's SHA1, as ``EVALSHA`` sends it). With ``forwarded=True`` that request reaches the server,
and when its reply comes back the relay is *cut*: the reply is lost, so the client never learns
that its write landed. With ``forwarded=False`` the relay is cut before the request is passed on,
so the write never lands. While cut (``cut()`` does it at once) every connection is reset and
every new one is reset as soon as it is accepted, until ``mend()``: the server is unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading

_RESET = b"\x01\x00\x00\x00\x00\x00\x00\x00"
"""``SO_LINGER`` on with a zero timeout: closing sends a reset, not a FIN."""


def _reset(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
    writer.transport.abort()


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
        self._marker: bytes | None = None
        self._forward_marked = False
        self._cut = threading.Event()
        self._open: set[asyncio.StreamWriter] = set()  # touched on the relay's loop only

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def is_cut(self) -> bool:
        return self._cut.is_set()

    def drop_replies(self, count: int) -> None:
        with self._lock:
            self._to_drop = count

    def cut_at(self, marker: bytes, *, forwarded: bool) -> None:
        """Cut the relay at the next request holding ``marker``: after its reply was lost when
        ``forwarded``, before it reaches the server when not."""
        with self._lock:
            self._marker, self._forward_marked = marker, forwarded

    def cut(self) -> None:
        """Reset every connection now, and every new one until ``mend``."""
        asyncio.run_coroutine_threadsafe(self._go_down(), self._loop).result(timeout=10)

    def mend(self) -> None:
        """Pass connections again (those reset while cut stay reset)."""
        self._cut.clear()

    def _take_drop(self) -> bool:
        with self._lock:
            if self._to_drop <= 0:
                return False
            self._to_drop -= 1
            self.dropped += 1
            return True

    def _take_marker(self, seen: bytes) -> bool | None:
        """Whether the marker armed is in ``seen`` (then disarmed): None when not, else whether
        the marked request is forwarded."""
        with self._lock:
            if self._marker is None or self._marker not in seen:
                return None
            self._marker = None
            return self._forward_marked

    async def _go_down(self) -> None:
        self._cut.set()
        for writer in list(self._open):
            _reset(writer)
        self._open.clear()

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
        if self._cut.is_set():
            _reset(client_writer)
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self._upstream_port)
        except OSError:
            _reset(client_writer)
            return
        if self._cut.is_set():  # cut while connecting
            _reset(client_writer)
            upstream_writer.close()
            return
        self._open.update((client_writer, upstream_writer))
        reply_loses_the_link = False

        async def forward_requests() -> None:
            nonlocal reply_loses_the_link
            tail = b""  # a marker may straddle two reads
            while data := await client_reader.read(65536):
                marked = self._take_marker(tail + data)
                tail = data[-64:]
                if marked is False:
                    await self._go_down()
                    return
                if marked:
                    reply_loses_the_link = True  # set before the request can be answered
                upstream_writer.write(data)
                await upstream_writer.drain()

        async def forward_replies() -> None:
            while data := await upstream_reader.read(65536):
                if reply_loses_the_link:
                    await self._go_down()
                    return
                if self._take_drop():
                    _reset(client_writer)  # a reset: the reply is lost
                    return
                client_writer.write(data)
                await client_writer.drain()

        tasks = [asyncio.ensure_future(forward_requests()), asyncio.ensure_future(forward_replies())]
        with contextlib.suppress(Exception):
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        self._open.difference_update((client_writer, upstream_writer))
        for writer in (client_writer, upstream_writer):
            with contextlib.suppress(Exception):
                writer.close()
