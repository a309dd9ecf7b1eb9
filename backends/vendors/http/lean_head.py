"""A response's head, parsed (by httptools), and what it says about the body that follows.

The lean client reads a body whose length is declared straight into one buffer of that size,
so it must know, from the head alone, how the body is framed (RFC 9112, section 6.3): none (a
HEAD request, 1xx, 204, 304), a declared length, chunked, or everything until the server closes.
httptools (llhttp, as uvicorn and aiohttp use) validates the status line and the fields; it
goes on parsing a chunked or close-delimited body, and is simply dropped after a sized one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import httptools

from backends.vendors.http.base import fold_headers

HEAD_LIMIT = 64 * 1024
"""The largest head read (aiohttp's limits are 8 KB a line and 32 KB of fields): a server that
sends more without ending its head is not speaking HTTP."""

Framing = Literal["none", "sized", "chunked", "until-close"]


@dataclass(frozen=True, slots=True)
class ResponseHead:
    status: int
    headers: dict[str, str]
    """Lowercase names; a repeated field's values joined by ", " (``fold_headers``)."""
    framing: Framing
    length: int | None
    """The declared body length, when ``framing`` is ``"sized"``."""
    keep_alive: bool
    """The connection may carry another exchange once this body is read."""

    @property
    def interim(self) -> bool:
        """A 1xx answer: another head follows (we never ask for an upgrade, so 101 is not one)."""
        return 100 <= self.status < 200 and self.status != 101


class HeadParser:
    """One response: its head parsed, then (chunked or close-delimited) its body's pieces.

    ``pieces`` collects the body as ``feed`` decodes it (fresh ``bytes``, the reader takes them
    away); ``complete`` is set at the end of a chunked body, and ``overrun`` when bytes of
    another answer, one nobody asked for, follow it.

    httptools' parser keeps the object it calls back; were that this parser, each answer would
    be a reference cycle (parser to callbacks to parser) left to the garbage collector, so the
    callbacks go to ``_Received``, which refers to nothing."""

    def __init__(self) -> None:
        self._received = _Received()
        self._parser = httptools.HttpResponseParser(self._received)

    @property
    def pieces(self) -> list[bytes]:
        return self._received.pieces

    @pieces.setter
    def pieces(self, pieces: list[bytes]) -> None:
        self._received.pieces = pieces

    @property
    def complete(self) -> bool:
        return self._received.complete

    @property
    def overrun(self) -> bool:
        return self._received.overrun

    def parse(self, head: bytes | bytearray | memoryview, *, no_body: bool) -> ResponseHead:
        """``head``, up to and including its empty line; ``no_body`` for an answer to HEAD. A
        ``ValueError`` for a head that is not HTTP/1.x or frames its body in a way we do not read."""
        try:
            self._parser.feed_data(head)
        except httptools.HttpParserError as exc:
            raise ValueError(f"not an HTTP/1.x head ({type(exc).__name__})") from exc
        status = self._parser.get_status_code()
        headers = fold_headers(self._received.fields)
        version = self._parser.get_http_version()
        if version not in ("1.0", "1.1"):
            raise ValueError(f"HTTP/{version[:8]}")
        framing, length = _framing(status, headers, no_body)
        tokens = {token.strip().lower() for token in headers.get("connection", "").split(",")}
        keep_alive = version == "1.1" and "close" not in tokens and framing != "until-close"
        return ResponseHead(status, headers, framing, length, keep_alive)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Body bytes of a chunked or close-delimited answer, decoded into ``pieces``."""
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            raise ValueError(f"a broken chunked body ({type(exc).__name__})") from exc


class _Received:
    """httptools' callbacks, and what they collect."""

    __slots__ = ("complete", "fields", "overrun", "pieces")

    def __init__(self) -> None:
        self.fields: list[tuple[str, str]] = []
        self.pieces: list[bytes] = []
        self.complete = False
        self.overrun = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.fields.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_body(self, body: bytes) -> None:
        self.pieces.append(body)

    def on_message_begin(self) -> None:
        self.overrun = self.complete

    def on_message_complete(self) -> None:
        self.complete = True


def _framing(status: int, headers: dict[str, str], no_body: bool) -> tuple[Framing, int | None]:
    if no_body or status < 200 or status in (204, 304):
        return "none", None
    coding = headers.get("transfer-encoding")
    if coding is not None:
        if coding.strip().lower() != "chunked":
            raise ValueError(f"transfer-encoding {coding[:20]!r}, which we do not read")
        return "chunked", None
    length = headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise ValueError(f"content-length {length[:20]!r}")
        return "sized", int(length)
    return "until-close", None


def head_end(data: bytes | bytearray, start: int, stop: int) -> int:
    """Where the head in ``data[:stop]`` ends (just past its empty line), or -1; ``start`` is
    where to look from (the part already searched, less the three bytes a split CRLFCRLF spans)."""
    found = data.find(b"\r\n\r\n", max(0, start - 3), stop)
    return -1 if found < 0 else found + 4
