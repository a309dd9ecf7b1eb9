"""One keep-alive HTTP/1.1 connection of the lean client: asyncio's buffered protocol, one exchange at a time.

Why a buffered protocol: aiohttp's protocol gets each received piece as a fresh ``bytes`` (64 KB
allocated per read), its parser slices it again into a stream, and the body is joined at the
end. Here the event loop reads (``get_buffer``/``buffer_updated``) a body whose length the head
declared, once that length is known to be within the cap, straight into one buffer kept from
earlier answers (``read_buffers``), and that buffer is the body handed on: no piece is
allocated, nothing is joined or copied. The head, and the rare chunked or close-delimited body,
are read through the client's one scratch buffer, so a connection holds no buffer while idle.

A connection is reusable only when its last answer was read to its end, the server keeps it
alive, nothing arrived that was not asked for, and it is still open.

An answer that cannot be read whole raises what broke it: the ``OSError`` the transport saw (a
reset), ``asyncio.IncompleteReadError`` (closed before the answer was complete) or a
``ValueError`` (a head or chunk that is not HTTP): all after the request was sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Literal, cast

from backends.vendors.http.lean_head import HEAD_LIMIT, HeadParser, ResponseHead, head_end
from backends.vendors.http.read_buffers import ReadBuffers

PAUSE_AT_BYTES = 1024 * 1024
"""A streamed body buffered past this, unread, pauses reading until the reader catches up."""

State = Literal["idle", "head", "sized", "stream", "done", "broken"]


class HttpConnection(asyncio.BufferedProtocol):
    def __init__(self, buffers: ReadBuffers) -> None:
        """``buffers``: the client's, shared by its connections."""
        self._buffers = buffers
        self._scratch_bytes = buffers.scratch
        self._scratch = memoryview(buffers.scratch)
        self._transport: asyncio.Transport | None = None
        self._state: State = "idle"
        self.exchanges = 0
        """Requests sent on this connection: more than one, it came from the pool."""
        self._answered = False
        """A byte of an answer to the current request arrived."""
        self._closed = False
        self._failure: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._spoiled = False
        """Bytes came that belong to no answer we asked for: never reused."""
        self._no_body = False
        self._limit = 0
        self._head_bytes = bytearray()
        self._head: ResponseHead | None = None
        self._parser: HeadParser | None = None
        self._body: bytearray | None = None
        """A kept buffer (``ReadBuffers.take``) as long as the declared body."""
        self._body_view: memoryview | None = None
        """A view of ``_body``, for the loop to read into (dropped before the body is handed on)."""
        self._filled = 0
        self._buffered = 0

    # The exchange, as the client drives it

    @property
    def reusable(self) -> bool:
        """Its answer read to the end, kept alive by the server, still open (or never used)."""
        if self._state == "idle":
            return self.open
        return (self._state == "done" and not self._closed and not self._spoiled and self._head is not None
                and self._head.keep_alive and self._transport is not None and not self._transport.is_closing())

    @property
    def open(self) -> bool:
        """Idle, and neither closed nor spoiled: may be taken from the pool."""
        return (self._state == "idle" and not self._closed and not self._spoiled and self._transport is not None
                and not self._transport.is_closing())

    @property
    def closed_unanswered(self) -> bool:
        """The server closed the connection before a byte of its answer: on a pooled connection,
        the close crossed our request (RFC 9112, section 9.3.1), which it never read."""
        return self._closed and not self._answered and self._state == "broken"

    def send(self, request: bytes, *, no_body: bool, limit: int) -> None:
        """Write one request; its answer is read from here on (``no_body`` for a HEAD request;
        a body longer than ``limit`` is left unread)."""
        assert self._transport is not None and self._state == "idle"
        self._state, self._no_body, self._limit = "head", no_body, limit
        self.exchanges += 1
        self._answered = False
        self._head, self._parser, self._body, self._body_view = None, None, None, None
        self._head_bytes = bytearray()
        self._transport.write(request)

    async def head(self) -> ResponseHead:
        while self._head is None:
            await self._wait()
        return self._head

    async def sized_body(self) -> bytes | bytearray:
        """The body of a ``"sized"`` head within the limit, as received: the buffer it was read
        into, lent (``read_buffers``: it is read into again only once nothing refers to it)."""
        while self._state == "sized":
            await self._wait()
        self._raise_failure()
        body = self._body
        self._body = self._body_view = None
        return b"" if body is None else body

    async def pieces(self) -> AsyncIterator[bytes]:
        """The pieces of a chunked or close-delimited body, as they arrive."""
        while True:
            parser = self._parser
            if parser is not None and parser.pieces:
                pieces, parser.pieces = parser.pieces, []
                self._buffered = 0
                self._resume()
                for piece in pieces:
                    yield piece
            elif self._state != "stream":
                self._raise_failure()
                return
            else:
                await self._wait()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._closed = True

    # asyncio's protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports subclass no asyncio class

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._state == "sized":
            assert self._body_view is not None
            return self._body_view[self._filled:]
        return self._scratch

    def buffer_updated(self, nbytes: int) -> None:
        if self._state == "sized":
            self._filled += nbytes
            assert self._body_view is not None
            if self._filled == len(self._body_view):
                self._state = "done"
                self._wake()
        elif self._state == "head":
            self._answered = True
            self._take_head(nbytes)
        elif self._state == "stream":
            self._take_stream(self._scratch[:nbytes])
        else:  # nothing was asked: a server speaking out of turn
            self._spoil()

    def eof_received(self) -> bool | None:
        return None  # the transport closes; connection_lost says whether an answer is cut short

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._state == "stream" and exc is None and self._head is not None and self._head.framing == "until-close":
            self._state = "done"
        elif self._state in ("head", "sized", "stream"):
            self._fail(exc or asyncio.IncompleteReadError(b"", None))  # closed before the answer was complete
        self._wake()

    # Reading

    def _take_head(self, nbytes: int) -> None:
        """``nbytes`` just read into the scratch buffer, while a head is awaited."""
        if self._head_bytes:
            searched = len(self._head_bytes)
            self._head_bytes += self._scratch[:nbytes]
            data: bytearray | memoryview = self._head_bytes
            end = head_end(self._head_bytes, searched, len(self._head_bytes))
        else:
            data = self._scratch[:nbytes]
            end = head_end(self._scratch_bytes, 0, nbytes)
        while end >= 0:
            if end > HEAD_LIMIT:
                self._fail(ValueError(f"a head longer than {HEAD_LIMIT} bytes"))
                return
            try:
                parser = HeadParser()
                head = parser.parse(data[:end], no_body=self._no_body)
            except ValueError as exc:
                self._fail(exc)
                return
            rest = data[end:]
            if not head.interim:
                self._begin_body(head, parser, rest)
                return
            self._head_bytes = bytearray(rest)  # a 100 Continue and the like: the answer follows
            data = self._head_bytes
            end = head_end(self._head_bytes, 0, len(self._head_bytes))
        if len(data) > HEAD_LIMIT:
            self._fail(ValueError(f"a head longer than {HEAD_LIMIT} bytes"))
        elif not self._head_bytes:
            self._head_bytes = bytearray(data)

    def _begin_body(self, head: ResponseHead, parser: HeadParser, rest: bytearray | memoryview) -> None:
        self._head = head
        self._head_bytes = bytearray()
        if head.framing == "none":
            self._finish(rest)
        elif head.framing == "sized":
            assert head.length is not None
            if head.length > self._limit:  # refused by the client, unread
                self._spoiled = True
                self._state = "broken"
                self._pause()
            else:
                self._body = self._buffers.take(head.length)
                self._body_view = memoryview(self._body)
                taken = min(len(rest), head.length)
                self._body_view[:taken] = rest[:taken]
                self._filled = taken
                if taken == head.length:
                    self._finish(rest[taken:])
                else:
                    self._state = "sized"
        else:
            self._parser = parser
            self._state = "stream"
            if rest:
                self._take_stream(rest)
        self._wake()

    def _take_stream(self, data: bytearray | memoryview) -> None:
        parser = self._parser
        assert parser is not None
        try:
            parser.feed(data)
        except ValueError as exc:
            if parser.complete:  # the body ended; what followed belongs to no answer
                self._spoiled = True
            else:
                self._fail(exc)
                return
        if parser.complete:
            self._state = "done"
            self._spoiled = self._spoiled or parser.overrun
        self._buffered += len(data)
        if self._buffered > PAUSE_AT_BYTES:
            self._pause()
        self._wake()

    def _finish(self, rest: bytearray | memoryview) -> None:
        self._state = "done"
        if rest:
            self._spoiled = True

    # Plumbing

    def _fail(self, exc: BaseException) -> None:
        self._failure = exc
        self._state = "broken"
        self._spoiled = True
        self._wake()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure.with_traceback(None)

    def _spoil(self) -> None:
        self._spoiled = True
        if self._state == "idle":
            self.close()

    async def _wait(self) -> None:
        self._raise_failure()
        waiter = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        try:
            await waiter
        finally:
            self._waiter = None
        self._raise_failure()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _pause(self) -> None:
        if not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()

    def _resume(self) -> None:
        if self._paused and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()

    def reset(self) -> None:
        """Ready for the next exchange (the pool calls this on a reusable connection)."""
        self._state = "idle"
        self._head = self._parser = None
        self._body = self._body_view = None
