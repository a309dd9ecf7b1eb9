"""Opening a connection for the lean client: checked addresses, a socket, TCP, then TLS for https.

Every failure here comes before a byte of a request is sent: an ``OSError`` (the client's
``unreachable``: a create that failed so is safe to send again), or the outbound policy's
refusal, the ``PermissionError`` ``CheckedAddresses`` raises (the client's ``refused_address``).

``socket_factory`` makes the socket for each address tried, called with the address as
``getaddrinfo`` gives it (aiohttp's hook, of the same shape): a test records where connections go.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
from collections.abc import Callable
from typing import Any

from backends.vendors.http.checked_addresses import CheckedAddresses
from backends.vendors.http.lean_connection import HttpConnection
from backends.vendors.http.lean_pool import Origin
from backends.vendors.http.read_buffers import ReadBuffers

AddressInfo = tuple[Any, ...]
"""``(family, type, proto, canonname, sockaddr)``, as ``getaddrinfo`` answers."""
SocketFactory = Callable[[AddressInfo], socket.socket]


def plain_socket(address: AddressInfo) -> socket.socket:
    sock = socket.socket(address[0], address[1], address[2])
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


@functools.cache
def default_tls() -> ssl.SSLContext:
    """The system's trust store, certificates and host names verified (loaded once: it costs ms)."""
    return ssl.create_default_context()


class Dialer:
    def __init__(self, addresses: CheckedAddresses, buffers: ReadBuffers,
                 socket_factory: SocketFactory | None = None, tls: ssl.SSLContext | None = None) -> None:
        """``buffers``: what the connections read into, shared (``HttpConnection``); ``tls``: the
        context https connections verify with (``default_tls()`` by default)."""
        self._addresses = addresses
        self._buffers = buffers
        self._socket_factory = socket_factory or plain_socket
        self._tls = tls

    async def __call__(self, origin: Origin) -> HttpConnection:
        scheme, host, port = origin
        addresses = await self._addresses.of(host, port)
        failure: OSError | None = None
        for address in addresses:
            try:
                return await self._connect(address, port, host if scheme == "https" else None)
            except PermissionError as exc:  # the system's refusal (a firewall), not the policy's
                failure = ConnectionError(f"not permitted to connect ({exc})")
            except OSError as exc:  # refused, unreachable, a TLS handshake or certificate refused
                failure = exc
        assert failure is not None  # CheckedAddresses never answers an empty list
        raise failure

    async def _connect(self, address: str, port: int, tls_host: str | None) -> HttpConnection:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
        sockaddr = (address, port, 0, 0) if family == socket.AF_INET6 else (address, port)
        sock = self._socket_factory((family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, sockaddr)
            _, connection = await loop.create_connection(
                lambda: HttpConnection(self._buffers), sock=sock,
                ssl=None if tls_host is None else self._tls or default_tls(), server_hostname=tls_host,
            )
        except BaseException:
            sock.close()
            raise
        return connection
