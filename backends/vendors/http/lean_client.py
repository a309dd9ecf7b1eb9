"""The lean ``HttpClient`` (the default): HTTP/1.1 on asyncio's own buffered protocol, nothing else.

Why: behind aiohttp, a 1.5 MB image answer (2 MB of JSON) cost the gateway about 7 ms of CPU,
42% of it in aiohttp's reading (a fresh 64 KB piece per read, a stream, a join at the end). Here a
body whose length is declared is read by the event loop straight into one buffer kept between
answers (``lean_connection``, ``read_buffers``); the head is parsed by httptools
(``lean_head``); keep-alive connections are pooled per origin (``lean_pool``) and opened only
to addresses the outbound policy allows (``lean_dialer``, ``checked_addresses``). A chunked or
compressed body streams through the same ``read_decoded`` as httpx's, the cap counted after
decompression.

What each failure becomes is the other clients' mapping (``base.py``): a failure while opening
the connection is ``unreachable`` (nothing was sent: a create failing so may be sent again);
once the request is written, a reset, an early close or a head that is not HTTP is
``broke_off``, and the call's one budget running out, whatever the phase, ``timed_out``.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Mapping

from backends.vendors.http.base import (
    MAX_ANSWER_BYTES,
    MAX_CONNECTIONS,
    MAX_REDIRECTS,
    broke_off,
    checker,
    read_decoded,
    refuse_declared,
    refused_address,
    timed_out,
    unreachable,
    unsendable,
)
from backends.vendors.http.checked_addresses import CheckedAddresses
from backends.vendors.http.lean_connection import HttpConnection
from backends.vendors.http.lean_dialer import Dialer, SocketFactory
from backends.vendors.http.lean_head import ResponseHead
from backends.vendors.http.lean_pool import ConnectionPool, Origin
from backends.vendors.http.lean_request import request_bytes, target_of
from backends.vendors.http.read_buffers import ReadBuffers
from backends.vendors.http.redirects import CheckedRequests
from backends.vendors.messages import HttpAnswer
from backends.vendors.name_resolver import NameResolver
from backends.vendors.url_policy import OutboundPolicy

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
"""Sent once more when a pooled connection closed under them (never a create: a POST)."""
BROKEN = (OSError, EOFError, ValueError)
"""What reading an answer raises when it cannot be read whole (``lean_connection``)."""


class LeanClient(CheckedRequests):
    """Pooled; bound to the event loop of its first call (as aiohttp's session is).

    With a ``policy``, names are looked up once through ``names`` (the system's resolver by
    default) and only allowed addresses are connected to. ``socket_factory`` makes the socket
    for each address connected to (aiohttp's hook, of the same shape); ``tls`` verifies https
    servers (the system's trust store by default; an internal CA's for a private worker)."""

    def __init__(self, *, max_connections: int = MAX_CONNECTIONS, max_answer_bytes: int = MAX_ANSWER_BYTES,
                 max_redirects: int = MAX_REDIRECTS, policy: OutboundPolicy | None = None,
                 names: NameResolver | None = None, socket_factory: SocketFactory | None = None,
                 tls: ssl.SSLContext | None = None) -> None:
        self._max_answer_bytes = max_answer_bytes
        self._max_redirects = max_redirects
        self._check = checker(policy)
        dialer = Dialer(CheckedAddresses(policy, names), ReadBuffers(), socket_factory, tls)
        self._pool = ConnectionPool(max_connections, dialer)

    @property
    def open_connections(self) -> int:
        """Connections open now, in use or idle in the pool."""
        return self._pool.open_connections

    async def _exchange(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                        timeout: float, limit: int) -> HttpAnswer:
        try:
            target = target_of(url)
            request = request_bytes(method, target, headers, body)
        except ValueError as exc:
            raise unsendable(url, exc) from exc
        try:
            async with asyncio.timeout(timeout):
                answer = await self._answer(target.origin, method, request, url, limit,
                                            resendable=method in IDEMPOTENT_METHODS)
                if answer is None:  # a pooled connection closed under the request: once more
                    answer = await self._answer(target.origin, method, request, url, limit, resendable=False)
        except TimeoutError as exc:  # the budget's only: an OSError of a connection is mapped below
            raise timed_out(url, timeout, exc) from exc
        assert answer is not None
        return answer

    async def _answer(self, origin: Origin, method: str, request: bytes, url: str, limit: int, *,
                      resendable: bool) -> HttpAnswer | None:
        """One request on a pooled (or new) connection. ``resendable``: None when a pooled
        connection closed before a byte of the answer, the server's close having crossed the
        request (RFC 9112 section 9.3.1): aiohttp sends an idempotent request once more then."""
        try:
            connection = await self._pool.acquire(origin)
        except PermissionError as exc:  # CheckedAddresses' refusal
            raise refused_address(url) from exc
        except OSError as exc:  # nothing was sent
            raise unreachable(url, exc) from exc
        try:
            connection.send(request, no_body=method == "HEAD", limit=limit)
            try:
                head = await connection.head()
                refuse_declared(head.length, url, limit)
                content = await _read(connection, head, url, limit)
            except BROKEN as exc:
                if resendable and connection.exchanges > 1 and connection.closed_unanswered:
                    return None
                raise broke_off(url, exc) from exc
        finally:
            self._pool.release(origin, connection)
        return HttpAnswer(head.status, head.headers, content)

    async def warm(self, url: str, count: int, timeout: float) -> int:
        """Open connections to ``url``'s origin ahead of need, until ``count`` are idle there, within
        ``timeout`` seconds; how many were opened. For a burst of requests about to start: each
        would otherwise open its own while the others wait on the event loop. A URL the client
        would refuse raises as a call would; a connection that fails to open is left to the call."""
        self._check(url, timeout)
        try:
            async with asyncio.timeout(timeout):
                return await self._pool.warm(target_of(url).origin, count)
        except TimeoutError as exc:
            raise timed_out(url, timeout, exc) from exc

    async def aclose(self) -> None:
        self._pool.close()


async def _read(connection: HttpConnection, head: ResponseHead, url: str, limit: int) -> bytes | bytearray:
    """The body within the cap: a sized, unencoded one as the loop read it, in the buffer it was
    read into (the common case);
    an encoded one decompressed by ``read_decoded``, which counts what decompression makes."""
    encoding = head.headers.get("content-encoding", "")
    if head.framing == "none":
        return b""
    if head.framing == "sized":
        body = await connection.sized_body()
        return body if not encoding else await read_decoded(_one(bytes(body)), encoding, url, limit)
    return await read_decoded(connection.pieces(), encoding, url, limit)


async def _one(body: bytes) -> AsyncIterator[bytes]:
    yield body
