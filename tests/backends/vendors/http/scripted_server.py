"""A raw asyncio HTTP/1.1 server on loopback where every path misbehaves in one scripted way.

Written on bare streams rather than a framework so that it can do what real servers only do by
accident: never answer, trickle a body, reset mid-body, promise more bytes than it sends, speak
no HTTP at all. Each connection serves requests until a script ends it (keep-alive, as vendors do).

Paths (``n`` is a number):

- ``/json``: 200 with a small JSON body.
- ``/status/n``: status ``n`` with a ``Retry-After``, a repeated ``X-Repeated`` and a JSON body.
- ``/silent``: reads the request and never answers.
- ``/trickle``: promises 200 bytes and sends one every ``TRICKLE_INTERVAL_S`` (10 s in all).
- ``/reset-mid-body``: sends the head and 10 of 1000 promised bytes, then a TCP reset.
- ``/reset-before-answer``: a TCP reset right after reading the request.
- ``/truncated``: the head and 10 of 1000 promised bytes, then a clean close.
- ``/truncated-chunked``: one chunk of a chunked body, then a clean close.
- ``/garbage``: a line that is not HTTP, then a close.
- ``/cookie``: 200 with a ``Set-Cookie``.
- ``/gzip``, ``/bad-gzip``: a gzip-encoded JSON body; a body that claims gzip and is not.
- ``/redirect/n``: ``302`` to ``/redirect/n-1``; ``/redirect/0`` answers 200 ``arrived``.
- ``/redirect-to?url``: ``302`` to the (percent-encoded) URL in the query.
- ``/large/n``, ``/large-chunked/n``: ``n`` bytes of a known pattern, sized or chunked.
- ``/gzip-bomb/n``: ``n`` MiB of zeros gzip-compressed (about 1000:1), chunked with no length.
- ``/deflate``: the JSON body as zlib-framed deflate.
- ``/announce/n``: announces ``n`` bytes, sends ten and never the rest (a reader waits forever).
- ``/head``: the answer to a HEAD: ``content-length: 1000`` (the size a GET would get), no body.
- ``/endless``, ``/endless-error``, ``/endless-gzip``: 200 (or 503) with a chunked body that
  never ends, plain or gzip-compressed zeros, until the client hangs up (or ``FLOOD_LIMIT``
  bytes, so that a reader without a cap fails its test rather than the machine); the bytes sent
  are counted in ``flooded``.

A path below any of these (``/endless/v1/...``, ``/announce/n/v1/...``) is the same script: a
client that appends its own path to a base URL can be pointed at one.
- anything else: 200 ``ok``.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import socket
import struct
import zlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from urllib.parse import unquote

import orjson

from tests.backends.vendors.http.loopback_server import LoopbackServer

TRICKLE_INTERVAL_S = 0.05
TRICKLE_BYTES = 200
RESET_GRACE_S = 0.05
"""How long a reset waits after the head so the client has read it: the reset is then mid-body."""
JSON_BODY = orjson.dumps({"created": 1, "data": [{"b64_json": "aGk="}]})
FLOOD_LIMIT = 128 * 1024 * 1024
"""Where an endless body gives up (decompressed size for ``/endless-gzip``)."""
FLOOD_CHUNK = 64 * 1024


def pattern(size: int) -> bytes:
    """``size`` bytes that a shifted or dropped chunk would visibly change."""
    block = bytes(range(256)) * 4096
    return (block * (size // len(block) + 1))[:size]


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    method: str
    target: str
    headers: dict[str, str]
    """Lowercase names; a field sent twice reads "first, second"."""
    body: bytes


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
                     extra: list[tuple[str, str]] | None = None) -> None:
        lines = [f"HTTP/1.1 {status} Scripted", f"content-length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in {**(headers or {})}.items()]
        lines += [f"{name}: {value}" for name, value in extra or []]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await self.writer.drain()

    async def head(self, lines: list[str]) -> None:
        self.writer.write(("\r\n".join(["HTTP/1.1 200 Scripted", *lines]) + "\r\n\r\n").encode("latin-1"))
        await self.writer.drain()

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    def reset(self) -> None:
        """Close with a TCP RST (linger 0) instead of a FIN."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()


Script = Callable[[Connection, ReceivedRequest], Awaitable[bool]]
"""Answers one request; returns whether the connection stays open for the next one."""


class ScriptedServer(LoopbackServer):
    def __init__(self) -> None:
        super().__init__()
        self.received: list[ReceivedRequest] = []
        self.closed_by_client = asyncio.Event()
        """Set when a client closes a connection while a script waits on it."""
        self.flooded = 0
        """Body bytes the endless scripts sent (compressed, for gzip) before the client hung up."""

    async def start(self) -> ScriptedServer:
        await super().start()
        return self

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = Connection(reader, writer)
        while (request := await _read_request(reader)) is not None:
            self.received.append(request)
            if not await self._script(request.target)(connection, request):
                break

    def _script(self, target: str) -> Script:
        path = target.split("?", 1)[0]
        parts = path.strip("/").split("/")
        scripts: dict[str, Script] = {
            "json": _json, "status": _status, "silent": self._silent, "trickle": _trickle,
            "reset-mid-body": _reset_mid_body, "reset-before-answer": _reset_before_answer,
            "truncated": _truncated, "truncated-chunked": _truncated_chunked, "garbage": _garbage,
            "cookie": _cookie, "gzip": _gzip, "bad-gzip": _bad_gzip, "redirect": _redirect, "redirect-to": _redirect_to,
            "large": _large, "large-chunked": _large_chunked, "gzip-bomb": _gzip_bomb, "deflate": _deflate,
            "announce": _announce, "head": _head, "endless": self._endless, "endless-error": self._endless,
            "endless-gzip": self._endless,
        }
        return scripts.get(parts[0], _ok)

    async def _endless(self, connection: Connection, request: ReceivedRequest) -> bool:
        kind = request.target.strip("/").split("/")[0]
        status = 503 if kind == "endless-error" else 200
        gzipped = kind == "endless-gzip"
        lines = ["transfer-encoding: chunked", "content-type: application/json", "x-boltgate-cost-usd: 0.040000"]
        connection.writer.write(("\r\n".join([f"HTTP/1.1 {status} Scripted", *lines,
                                                *(["content-encoding: gzip"] if gzipped else [])])
                                 + "\r\n\r\n").encode("latin-1"))
        compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        block = bytes(FLOOD_CHUNK)
        for _ in range(FLOOD_LIMIT // FLOOD_CHUNK):
            chunk = compressor.compress(block) + compressor.flush(zlib.Z_SYNC_FLUSH) if gzipped else block
            if chunk:
                await connection.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.flooded += len(chunk)
        return False

    async def _silent(self, connection: Connection, request: ReceivedRequest) -> bool:
        await connection.reader.read()  # returns at EOF: the client gave up
        self.closed_by_client.set()
        return False


async def _read_request(reader: asyncio.StreamReader) -> ReceivedRequest | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, target, _ = request_line.split(" ", 2)
    headers: dict[str, str] = {}
    for line in filter(None, header_lines):
        name, value = (part.strip() for part in line.split(":", 1))
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return ReceivedRequest(method, target, headers, body)


def _number(request: ReceivedRequest) -> int:
    """The ``n`` of ``/script/n`` (a longer path, ``/script/n/v1/...``, has the same ``n``)."""
    return int(request.target.split("?", 1)[0].strip("/").split("/")[1])


async def _ok(connection: Connection, request: ReceivedRequest) -> bool:
    await connection.answer(200, b"ok")
    return True


async def _head(connection: Connection, request: ReceivedRequest) -> bool:
    await connection.head(["content-length: 1000"])
    return True


async def _json(connection: Connection, request: ReceivedRequest) -> bool:
    await connection.answer(200, JSON_BODY, {"content-type": "application/json", "x-request-id": "req-1"})
    return True


async def _status(connection: Connection, request: ReceivedRequest) -> bool:
    status = _number(request)
    body = b"" if status in (204, 304) else orjson.dumps({"error": {"code": f"E{status}"}})
    await connection.answer(status, body, {"Content-Type": "application/json", "Retry-After": "7"},
                            extra=[("X-Repeated", "one"), ("x-repeated", "two")])
    return True


async def _trickle(connection: Connection, request: ReceivedRequest) -> bool:
    await connection.head([f"content-length: {TRICKLE_BYTES}"])
    for _ in range(TRICKLE_BYTES):
        await asyncio.sleep(TRICKLE_INTERVAL_S)
        await connection.send(b"x")
    return True


async def _reset_mid_body(connection: Connection, request: ReceivedRequest) -> bool:
    await connection.head(["content-length: 1000"])
    await connection.send(b"0123456789")
    await asyncio.sleep(RESET_GRACE_S)
    connection.reset()
    return False


async def _reset_before_answer(connection: Connection, request: ReceivedRequest) -> bool:
    connection.reset()
    return False


async def _truncated(connection: Connection, request: ReceivedRequest) -> bool:
    await connection.head(["content-length: 1000"])
    await connection.send(b"0123456789")
    return False


async def _truncated_chunked(connection: Connection, request: ReceivedRequest) -> bool:
    await connection.head(["transfer-encoding: chunked"])
    await connection.send(b"a\r\n0123456789\r\n")
    return False


async def _garbage(connection: Connection, request: ReceivedRequest) -> bool:
    await connection.send(b"SPEAKING NO HTTP AT ALL\r\n\r\n")
    return False


async def _cookie(connection: Connection, request: ReceivedRequest) -> bool:
    await connection.answer(200, b"ok", {"set-cookie": "session=abc; Path=/"})
    return True


async def _gzip(connection: Connection, request: ReceivedRequest) -> bool:
    await connection.answer(200, gzip.compress(JSON_BODY), {"content-encoding": "gzip"})
    return True


async def _bad_gzip(connection: Connection, request: ReceivedRequest) -> bool:
    await connection.answer(200, b"this is not gzip at all, not even close", {"content-encoding": "gzip"})
    return False


async def _redirect(connection: Connection, request: ReceivedRequest) -> bool:
    left = _number(request)
    if left == 0:
        await connection.answer(200, b"arrived")
    else:
        await connection.answer(302, b"", {"location": f"/redirect/{left - 1}"})
    return True


async def _redirect_to(connection: Connection, request: ReceivedRequest) -> bool:
    await connection.answer(302, b"", {"location": unquote(request.target.split("?", 1)[1])})
    return True


async def _large(connection: Connection, request: ReceivedRequest) -> bool:
    await connection.answer(200, pattern(_number(request)))
    return True


async def _large_chunked(connection: Connection, request: ReceivedRequest) -> bool:
    await connection.head(["transfer-encoding: chunked"])
    body = pattern(_number(request))
    step = 256 * 1024
    for start in range(0, len(body), step):
        chunk = body[start:start + step]
        await connection.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
    await connection.send(b"0\r\n\r\n")
    return True



class _GzipBomb:
    """``mib`` MiB of zeros as a gzip stream, in the pieces the compressor gives: compressed while
    the first client reads it (as a vendor would stream it), replayed from memory to the next ones.
    Compressing 256 MiB takes seconds, and every client suite and event loop gets the same bytes."""

    _ZEROS = bytes(1024 * 1024)

    def __init__(self, mib: int) -> None:
        self._left_mib = mib
        self._compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        self._pieces: list[bytes] = []
        self._flushed = False

    def pieces(self) -> Iterator[bytes]:
        """The stream's non-empty pieces in order, its tail last."""
        sent = 0
        while True:
            while sent < len(self._pieces):
                yield self._pieces[sent]
                sent += 1
            if self._flushed:
                return
            if self._left_mib:
                self._left_mib -= 1
                piece = self._compressor.compress(self._ZEROS)
            else:
                self._flushed, piece = True, self._compressor.flush()
            if piece:
                self._pieces.append(piece)


@functools.cache
def _gzip_bomb_of(mib: int) -> _GzipBomb:
    return _GzipBomb(mib)


def prepare_gzip_bomb(mib: int) -> None:
    """Compress ``/gzip-bomb/mib`` now, before a client times its read: the server would compress
    all of it while the first client reads anyway (the socket's buffers take its whole compressed
    stream), which on a loaded machine can take longer than that client waits."""
    for _ in _gzip_bomb_of(mib).pieces():
        pass


async def _gzip_bomb(connection: Connection, request: ReceivedRequest) -> bool:
    await connection.head(["transfer-encoding: chunked", "content-encoding: gzip"])
    for piece in _gzip_bomb_of(_number(request)).pieces():
        await connection.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
    await connection.send(b"0\r\n\r\n")
    return True


async def _deflate(connection: Connection, request: ReceivedRequest) -> bool:
    await connection.answer(200, zlib.compress(JSON_BODY), {"content-encoding": "deflate"})
    return True


async def _announce(connection: Connection, request: ReceivedRequest) -> bool:
    await connection.head([f"content-length: {_number(request)}"])
    await connection.send(bytes(10))
    await connection.reader.read()  # returns at EOF: the client hung up
    return False
