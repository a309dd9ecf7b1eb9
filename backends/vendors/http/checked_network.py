"""The httpx client's network layer under the outbound policy: resolve, check, connect to the checked address.

httpx resolves names inside httpcore's network backend, out of the policy's reach; this backend
looks a name up itself, once (``name_resolver``), keeps only the addresses
``OutboundPolicy.allowed_addresses`` allows and connects to one of those, so no second DNS answer
(a rebinding) can swap the address after the check. TLS still verifies the certificate and sends
SNI for the URL's host name: httpcore takes those from the request, not from the address
connected to.
"""

from __future__ import annotations

from collections.abc import Iterable

import httpcore
import httpx

from backends.vendors.name_resolver import NameResolver, SystemResolver
from backends.vendors.url_policy import OutboundPolicy

SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
"""httpcore's own type for a socket option (it exports none)."""


class CheckedNetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore's default (anyio) backend, connecting only to addresses the policy allows.

    ``names`` looks names up (the system's resolver by default); ``inner`` opens the connection
    to an address (httpcore's anyio backend by default)."""

    def __init__(self, policy: OutboundPolicy, inner: httpcore.AsyncNetworkBackend | None = None,
                 names: NameResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner or httpcore.AnyIOBackend()
        self._names = names or SystemResolver()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: Iterable[SocketOption] | None = None) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self._names.addresses(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"{host} does not resolve: {exc}") from exc
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


def checked_transport(limits: httpx.Limits, policy: OutboundPolicy, *, names: NameResolver | None = None,
                      network: httpcore.AsyncNetworkBackend | None = None) -> httpx.AsyncBaseTransport:
    """httpx's own transport (its request and error mapping) over a pool that uses the checked
    backend (``names`` and ``network`` as ``CheckedNetworkBackend`` takes them)."""
    transport = httpx.AsyncHTTPTransport(limits=limits)
    transport._pool = httpcore.AsyncConnectionPool(  # the one seam httpx leaves for a network backend
        ssl_context=httpx.create_ssl_context(), max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections, keepalive_expiry=limits.keepalive_expiry,
        network_backend=CheckedNetworkBackend(policy, inner=network, names=names),
    )
    return transport
