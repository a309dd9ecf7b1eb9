"""A loopback server whose every connection runs one script over the bare socket streams.

For what is specific to the lean client (which connection a request goes out on, an answer in
tiny pieces, a server that closes between answers): each test writes the bytes it wants.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tests.backends.vendors.http.loopback_server import LoopbackServer

ConnectionScript = Callable[["RawConnection"], Awaitable[None]]


class RawConnection:
    def __init__(self, number: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 requests: list[bytes]) -> None:
        self.number = number
        """1 for the server's first connection, 2 for the next..."""
        self.reader = reader
        self.writer = writer
        self._requests = requests

    async def request(self) -> bytes | None:
        """The next request's head and body, or None when the client hung up."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        request = head + await self.reader.readexactly(length)
        self._requests.append(request)
        return request

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send_in_pieces(self, data: bytes, size: int) -> None:
        """``data`` in writes of ``size`` bytes, the loop turning between them."""
        for start in range(0, len(data), size):
            await self.send(data[start:start + size])
            await asyncio.sleep(0)


class RawServer(LoopbackServer):
    def __init__(self, script: ConnectionScript) -> None:
        super().__init__()
        self._script = script
        self.requests: list[bytes] = []

    @property
    def url(self) -> str:
        return self.base_url

    async def start(self) -> RawServer:
        await super().start()
        return self

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._script(RawConnection(self.connections, reader, writer, self.requests))


def answer(body: bytes, *fields: str, status: str = "200 OK", version: str = "1.1") -> bytes:
    """A whole answer with a declared length (and any extra ``fields``)."""
    lines = [f"HTTP/{version} {status}", f"content-length: {len(body)}", *fields]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(body: bytes, size: int) -> bytes:
    """A whole chunked answer, in chunks of ``size`` bytes."""
    head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    chunks = [f"{len(body[i:i + size]):x}\r\n".encode() + body[i:i + size] + b"\r\n" for i in range(0, len(body), size)]
    return head + b"".join(chunks) + b"0\r\n\r\n"
