"""A host name that resolves to several loopback addresses, for the tests of ``boltgate serve
--host NAME``: which addresses ``localhost`` resolves to is each machine's hosts file (here it may
be 127.0.0.1 alone), so these tests give the resolver a name of their own. Only the resolver
(``socket.getaddrinfo``) is swapped, for that one name; the addresses are ones this machine
really listens on: 127.0.0.1 and 127.0.0.2, and ::1 where it has IPv6 (checked when imported).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

SEVERAL = "several.boltgate.test"


def ipv6_loopback() -> bool:
    """Whether this machine can listen on ::1 (a container without IPv6 cannot)."""
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


SEVERAL_ADDRESSES = ["127.0.0.1", "127.0.0.2", *(["::1"] if ipv6_loopback() else [])]
"""What ``SEVERAL`` resolves to, in this order."""
NO_IPV6 = "this machine cannot listen on ::1 (no IPv6): only the IPv4 addresses are tested"


def resolving_several(resolve: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
    """``resolve`` (``socket.getaddrinfo``), but ``SEVERAL`` resolves to ``SEVERAL_ADDRESSES``."""

    def resolving(host: str | None, *args: Any, **kwargs: Any) -> list[Any]:
        if host != SEVERAL:
            return resolve(host, *args, **kwargs)
        return [found for address in SEVERAL_ADDRESSES for found in resolve(address, *args, **kwargs)]

    return resolving


BOLTGATE_RESOLVING_SEVERAL = (
    "import socket, sys; from tests.several_addresses import resolving_several; "
    "socket.getaddrinfo = resolving_several(socket.getaddrinfo); "
    "from proxy.cli import main; sys.exit(main(sys.argv[1:]))")
"""``python -c`` code: ``boltgate`` with ``SEVERAL`` resolving to ``SEVERAL_ADDRESSES``."""
