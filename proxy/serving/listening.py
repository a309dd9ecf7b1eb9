"""The sockets ``boltgate serve`` listens on, bound before anything starts.

``boltgate serve`` binds the port itself (so that a port taken is one line and exit 1, for one
worker or N) and hands the sockets to uvicorn, or to the supervisor's workers. A host given by
name is bound as uvicorn used to bind it through asyncio's ``create_server``: on every address
the name resolves to (``localhost``: 127.0.0.1 and, where the hosts file says so, ::1), so that
clients which try the name's IPv6 address first still reach the gateway. Unlike ``create_server``,
which asks the kernel for a free port per address, every socket has the one port: with port 0,
the one the first socket was given. The kernel picked that port as free on the first address
only: another program may hold it on a later one, and then the whole binding starts again on a
fresh pick (``PORT_0_TRIES`` times), where a port that was asked for is refused at once.
"""

from __future__ import annotations

import errno
import socket

from proxy.serving.config import LISTEN_BACKLOG

PORT_0_TRIES = 5
"""How many ports the kernel is asked for (port 0) before a host whose later addresses hold each
of them is refused: a port free on one address is rarely taken on another, five in a row only
when something takes every port it is offered."""


def bind(host: str, port: int) -> list[socket.socket]:
    """One listening socket per address ``host`` resolves to, all on ``port`` (the first one's
    when ``port`` is 0: tried again on a fresh one when a later address has it taken), inheritable
    by the workers. Any that cannot be bound (the port taken on one address, a name that does not
    resolve) raises ``OSError``, with none left open."""
    addresses = listen_addresses(host, port)
    fresh_ports = PORT_0_TRIES - 1 if port == 0 else 0
    while True:
        try:
            return _bind_each(addresses, port)
        except OSError as error:
            if error.errno != errno.EADDRINUSE or not fresh_ports:
                raise
            fresh_ports -= 1


def _bind_each(addresses: list[tuple[socket.AddressFamily, tuple[object, ...]]], port: int) -> list[socket.socket]:
    """A listening socket on each of ``addresses``, all on ``port`` (the first one's for 0); none
    left open when one fails."""
    both_families = len({family for family, _ in addresses}) > 1
    sockets: list[socket.socket] = []
    try:
        for family, address in addresses:
            if sockets and port == 0:
                address = (address[0], bound_port(sockets), *address[2:])
            sockets.append(_listening(family, address, v6_only=both_families))
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def listen_addresses(host: str, port: int) -> list[tuple[socket.AddressFamily, tuple[object, ...]]]:
    """Where ``host`` listens: the addresses it resolves to, each once, in the resolver's order
    (an empty host, as for asyncio, is every interface: 0.0.0.0 and ::)."""
    found = socket.getaddrinfo(host or None, port, family=socket.AF_UNSPEC, type=socket.SOCK_STREAM,
                               flags=socket.AI_PASSIVE)
    unique: dict[tuple[socket.AddressFamily, tuple[object, ...]], None] = {}
    for family, _, _, _, address in found:
        unique[(family, tuple(address))] = None
    return list(unique)


def bound_port(sockets: list[socket.socket]) -> int:
    """The port ``sockets`` (from ``bind``) listen on: the one asked for, or the kernel's pick for 0."""
    port: int = sockets[0].getsockname()[1]
    return port


def where(host: str, port: int) -> str:
    """``host:port`` as a URL writes it (an IPv6 address in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _listening(family: socket.AddressFamily, address: tuple[object, ...], *, v6_only: bool) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and v6_only:
            # Beside an IPv4 socket, as asyncio binds them: "::" would otherwise take IPv4's port too
            # and the IPv4 socket would collide with it. Alone, "::" keeps the kernel's dual stack.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock
