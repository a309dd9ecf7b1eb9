"""uvicorn's httptools protocol with the limits it lacks: header size, header and body deadlines,
and a cap on open connections.

uvicorn bounds neither the size of a request's headers (a 10 MB header was read and answered 200)
nor the time a client may take to send them (once a byte arrives, its keep-alive timer is off),
and it accepts connections until the process runs out of file descriptors. Measured before this
guard: 20,600 half-sent requests took every descriptor and ``/healthz`` was refused; ten clients
streaming one endless header grew the process by 275 MB in 12 s.

This subclass answers, in OpenAI's error envelope, and closes the connection:

- 503 at once to a connection beyond ``max_connections`` (no request is read);
- 431 when a request's line and headers pass ``max_header_bytes`` (checked while they stream in,
  so an endless header costs at most one read buffer past the limit);
- 408 when the headers are not complete ``header_timeout_s`` after the connection opened (or
  after a keep-alive request's first byte), or the body ``body_timeout_s`` after the headers.

And it cuts (resets) a connection whose client stops reading its answer: what the kernel cannot
take waits in the transport's buffer, and uvicorn waits for it without end, even past its
keep-alive close (a graceful close waits for the buffer to empty). Measured before this guard: a
client that read nothing of a 4 MB answer held it, and its connection slot, for as long as it
stayed connected, so 2,048 such clients would hold every slot and gigabytes of answers. When the
bytes waiting to go out have not gone down for ``send_timeout_s`` (and the buffer did not drain
below its low-water mark in between), the connection is aborted; a client that reads, however
slowly, keeps it (nginx's ``send_timeout``).

Each request's cycle also takes a whole answer in one message (``one_write``), advertised in the
scope's extensions.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from proxy.serving.one_write import EXTENSION, one_write
from proxy.settings import ServerConfig

_REASONS = {408: "Request Timeout", 431: "Request Header Fields Too Large", 503: "Service Unavailable"}
LINGER_S = 2.0
"""After a refusal, how long what the client still sends is read and dropped before closing: closing
with unread bytes would reset the connection, and the client would lose the answer (as nginx's
lingering close avoids)."""


def error_response(status: int, message: str, code: str) -> bytes:
    """A complete HTTP/1.1 answer that closes the connection, in OpenAI's error envelope."""
    body = orjson.dumps({"error": {"message": message, "type": "invalid_request_error" if status < 500
                                   else "server_error", "param": None, "code": code}})
    head = (f"HTTP/1.1 {status} {_REASONS[status]}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")
    return head.encode("ascii") + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """One client connection, bounded. ``limits`` is set on the subclass ``guarded_protocol`` makes."""

    limits: ServerConfig = ServerConfig()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._reading_headers = True
        self._header_bytes = 0
        self._refusal: bytes | None = None
        self._turned_away = False
        self._lingering = False
        self._send_watch: asyncio.TimerHandle | None = None
        self._drained = False
        """Whether the write buffer fell below its low-water mark since the send watch last looked."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self._turned_away = True
            transport.write(error_response(503, "The gateway has too many open connections; retry shortly",
                                           "too_many_connections"))
            transport.close()
            return
        super().connection_made(transport)
        self._arm(self.limits.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._send_watch is not None:
            self._send_watch.cancel()
            self._send_watch = None
        if not self._turned_away:
            super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._turned_away or self._lingering or self.transport.is_closing():
            return  # dropped: the answer is sent, the connection is closing
        if self._reading_headers:
            self._header_bytes += len(data)
        super().data_received(data)
        if self._reading_headers and self._header_bytes > self.limits.max_header_bytes:
            self._close_with(error_response(431, "The request's headers are too large", "headers_too_large"))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_headers = True
        if self._deadline is None:
            self._arm(self.limits.header_timeout_s)

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.limits.max_header_bytes:
            self._refusal = error_response(431, "The request's headers are too large", "headers_too_large")
            raise ValueError("headers too large")  # stops the parser; send_400_response answers 431
        self._arm(self.limits.body_timeout_s)
        super().on_headers_complete()
        if self.cycle is not None and self.cycle.scope is self.scope:  # a new request's (not an upgrade)
            one_write(self.cycle)
            self.scope.setdefault("extensions", {})[EXTENSION] = {}

    def on_message_complete(self) -> None:
        self._disarm()
        self._reading_headers = True
        self._header_bytes = 0
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch_sending()  # an answer that did not all fit in the kernel's buffers

    def pause_writing(self) -> None:
        super().pause_writing()
        self._watch_sending()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._drained = True

    def _watch_sending(self) -> None:
        """Look at the bytes waiting to be sent ``send_timeout_s`` from now (unless already watching)."""
        if self._send_watch is None and (unsent := self.transport.get_write_buffer_size()) > 0:
            self._drained = False
            self._send_watch = self.loop.call_later(self.limits.send_timeout_s, self._check_sending, unsent)

    def _check_sending(self, unsent_before: int) -> None:
        """Keep watching while the client reads; cut the connection when it has stopped."""
        self._send_watch = None
        unsent = self.transport.get_write_buffer_size()
        if unsent == 0:
            return
        if unsent < unsent_before or self._drained:
            self._watch_sending()
            return
        self.transport.abort()  # a reset: nothing more is sent, the buffer is freed

    def send_400_response(self, msg: str) -> None:
        if self._refusal is not None:
            self._close_with(self._refusal)
        else:
            super().send_400_response(msg)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        what = "headers" if self._reading_headers else "body"
        if self.cycle is not None and self.cycle.response_started and not self.cycle.response_complete:
            self.transport.close()  # the app is already answering; only cut the connection
            return
        self._close_with(error_response(408, f"The request's {what} did not arrive in time", "request_timeout"))

    def _close_with(self, response: bytes) -> None:
        """Answer, stop sending, drop what still arrives for ``LINGER_S``, then close."""
        self._disarm()
        if self._lingering or self.transport.is_closing():
            return
        self._lingering = True
        self.transport.write(response)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.flow.resume_reading()
        self._deadline = self.loop.call_later(LINGER_S, self.transport.close)


def guarded_protocol(limits: ServerConfig) -> type[GuardedHttpToolsProtocol]:
    """The protocol class uvicorn instantiates per connection, bound to ``limits``."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"limits": limits})
