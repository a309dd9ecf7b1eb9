"""The httpx client's network layer under the outbound policy: resolve, check, connect to the checked address.

httpx resolves names inside httpcore's network backend, out of the policy's reach; this backend
resolves a name itself, keeps only the addresses ``OutboundPolicy.allowed_addresses`` allows and
connects to one of those, so no second DNS answer (a rebinding) can swap the address after the
check. TLS still verifies the certificate and sends SNI for the URL's host name: httpcore takes
those from the request, not from the address connected to.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable

import httpcore
import httpx

from backends.vendors.url_policy import OutboundPolicy

SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
"""httpcore's own type for a socket option (it exports none)."""


class CheckedNetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore's default (anyio) backend, connecting only to addresses the policy allows."""

    def __init__(self, policy: OutboundPolicy, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._policy = policy
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: Iterable[SocketOption] | None = None) -> httpcore.AsyncNetworkStream:
        try:
            found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"{host} does not resolve: {exc}") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
        failure: httpcore.ConnectError | None = None
        for address in self._policy.allowed_addresses(host, port, addresses):  # PermissionError: none allowed
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None  # allowed_addresses never answers an empty list
        raise failure

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[SocketOption] | None = None) -> httpcore.AsyncNetworkStream:
        raise PermissionError("the outbound policy allows no unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def checked_transport(limits: httpx.Limits, policy: OutboundPolicy) -> httpx.AsyncBaseTransport:
    """httpx's own transport (its request and error mapping) over a pool that uses the checked backend."""
    transport = httpx.AsyncHTTPTransport(limits=limits)
    transport._pool = httpcore.AsyncConnectionPool(  # the one seam httpx leaves for a network backend
        ssl_context=httpx.create_ssl_context(), max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections, keepalive_expiry=limits.keepalive_expiry,
        network_backend=CheckedNetworkBackend(policy),
    )
    return transport
