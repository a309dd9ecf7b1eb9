"""Looking a host name up: the one seam every HTTP client resolves names through.

The outbound policy (``url_policy``) must judge the address a connection goes to, not some
earlier answer for the same name, or a name that answers a public address to the check and a
private one to the connect (DNS rebinding) walks past it. So each client looks a name up once,
through a ``NameResolver``, keeps the addresses the policy allows and connects to those: the lean
client through ``http.checked_addresses``, aiohttp through ``url_policy.CheckedResolver``, httpx
through ``http.checked_network``.

``SystemResolver`` (the operating system's ``getaddrinfo``) is the default; a test passes its own
to play a hostile DNS server.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Protocol


class NameResolver(Protocol):
    async def addresses(self, host: str, port: int) -> list[str]:
        """The addresses ``host`` resolves to, in the resolver's order and without repeats; an
        ``OSError`` (``socket.gaierror``) when it does not resolve."""
        ...


class SystemResolver:
    """The operating system's resolver, run off the event loop (``loop.getaddrinfo``)."""

    async def addresses(self, host: str, port: int) -> list[str]:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in found))
