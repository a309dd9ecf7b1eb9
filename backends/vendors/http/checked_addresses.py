"""The addresses the lean client may connect to for a host: looked up once, checked, kept a while.

As ``url_policy.CheckedResolver`` does for aiohttp: a name is looked up through the client's
``NameResolver``, only the addresses the ``OutboundPolicy`` allows are kept (``PermissionError``
when none is), and the connection goes to one of those, so a DNS answer cannot change between
check and connect (rebinding). The checked answer is kept for ``TTL_S``, as aiohttp's connector
keeps it, and the lookups for a host that a burst of new connections needs at once are one.
"""

from __future__ import annotations

import asyncio
import ipaddress

from backends.vendors.name_resolver import NameResolver, SystemResolver
from backends.vendors.url_policy import OutboundPolicy

TTL_S = 300.0
"""aiohttp's ``ttl_dns_cache`` as the aiohttp client sets it."""


class CheckedAddresses:
    def __init__(self, policy: OutboundPolicy | None, names: NameResolver | None = None) -> None:
        """Without a ``policy`` every address is allowed (only the URL's form was checked)."""
        self._policy = policy
        self._names = names or SystemResolver()
        self._known: dict[tuple[str, int], tuple[list[str], float]] = {}
        self._looking: dict[tuple[str, int], asyncio.Task[list[str]]] = {}

    async def of(self, host: str, port: int) -> list[str]:
        """The allowed addresses of ``host``, in the resolver's order: never empty. An ``OSError``
        when it does not resolve; a ``PermissionError`` when the policy allows none of them."""
        if _is_literal(host):
            return self._allowed(host, port, [host.strip("[]")])
        key = (host, port)
        loop = asyncio.get_running_loop()
        known = self._known.get(key)
        if known is not None and known[1] > loop.time():
            return known[0]
        looking = self._looking.get(key)
        if looking is None:
            looking = loop.create_task(self._look_up(host, port))
            self._looking[key] = looking
            looking.add_done_callback(lambda done: self._looked_up(key, done))
        return await asyncio.shield(looking)

    async def _look_up(self, host: str, port: int) -> list[str]:
        found = await self._names.addresses(host, port)
        if not found:
            raise OSError(f"{host} resolves to no address")
        return self._allowed(host, port, found)

    def _looked_up(self, key: tuple[str, int], done: asyncio.Task[list[str]]) -> None:
        del self._looking[key]
        if not done.cancelled() and done.exception() is None:  # a failure is not kept: the next call asks again
            self._known[key] = (done.result(), asyncio.get_running_loop().time() + TTL_S)

    def _allowed(self, host: str, port: int, found: list[str]) -> list[str]:
        return found if self._policy is None else self._policy.allowed_addresses(host, port, found)


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
