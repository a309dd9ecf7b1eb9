"""Which URLs a vendor may make the gateway fetch: the outbound policy, in one place.

A vendor's answer names URLs (output images, a job's cancel link). The gateway holds vendor keys
and runs inside a cluster network, so a careless or compromised vendor, a CDN, or anyone able to
rewrite a plain-http answer must not be able to point it at internal addresses. The rules:

- ``https`` only, except on a *trusted* host;
- no credentials in the URL (``user:pw@`` would be sent as Basic auth);
- an address literal only as a dotted quad or in IPv6 form (``2130706433`` and ``127.1`` are
  127.0.0.1 to the C library, and some clients connect to them without resolving);
- the address connected to must be public (not loopback, private, link-local, shared,
  multicast, reserved or a cloud metadata address) unless the host is trusted. A name is checked
  by the resolver the connection itself uses (``CheckedResolver`` for aiohttp,
  ``backends.vendors.http.checked_network`` for httpx, ``checked_addresses`` for the lean
  client), so the address checked is the address
  connected to and a DNS answer cannot change between check and connect;
- redirects are followed by the HTTP client (``backends.vendors.http.redirects``), each hop
  checked again.

Trusted hosts are the operator's: the origins of the route's own regions (the simulators on
loopback, a private GPU worker) and the hosts the settings list. An entry is ``host`` (any port)
or ``host:port``.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult

from backends.vendors.name_resolver import NameResolver, SystemResolver
from core.errors import UnsafeVendorUrl

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def is_public_address(address: IpAddress) -> bool:
    """True when ``address`` is globally routable: never loopback, private, link-local (cloud
    metadata at 169.254.169.254), shared (100.64/10), multicast, reserved or unspecified, also
    when an IPv6 address embeds an IPv4 one (mapped, 6to4, Teredo, NAT64)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and not is_public_address(embedded):
            return False
    return address.is_global and not address.is_multicast


def _ip_literal(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _other_ipv4_spelling(host: str) -> bool:
    """Whether ``host`` is an IPv4 address in a form other than the dotted quad (``2130706433``,
    ``127.1``, ``0x7f.0.0.1``, ``0177.0.0.1``): the C library connects to those as addresses
    while ``ipaddress`` reads none of them, and an HTTP client may take one for a literal and
    skip its checked resolver (aiohttp before 3.14 did), so none is ever fetched."""
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return _ip_literal(host) is None


@dataclass(frozen=True, slots=True)
class Origin:
    """A trusted host, on one port or (``port=None``) on any."""

    host: str
    port: int | None = None

    @classmethod
    def parse(cls, entry: str) -> Origin:
        """From ``host``, ``host:port``, ``[v6]:port`` or a URL (``http://host:port/...``)."""
        if "://" in entry:
            parts = urlsplit(entry)
            return cls((parts.hostname or "").lower(), parts.port or _default_port(parts.scheme))
        parts = urlsplit(f"//{entry}")
        return cls((parts.hostname or "").lower(), parts.port)

    def admits(self, host: str, port: int) -> bool:
        return self.host == host.lower().strip("[]") and self.port in (None, port)


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """What one route may fetch. Built from the route's regions and the settings."""

    trusted: frozenset[Origin] = frozenset()

    @classmethod
    def trusting(cls, entries: Iterable[str]) -> OutboundPolicy:
        return cls(frozenset(Origin.parse(entry) for entry in entries if entry))

    def trusts(self, host: str, port: int) -> bool:
        return any(origin.admits(host, port) for origin in self.trusted)

    def check(self, url: str) -> SplitResult:
        """The parsed URL when its form is allowed; the address is checked when it is resolved."""
        try:
            parts = urlsplit(url)
            port = parts.port or _default_port(parts.scheme)
        except ValueError as exc:
            raise UnsafeVendorUrl(f"not a URL: {url[:120]!r}") from exc
        host = parts.hostname or ""
        if parts.scheme not in ("http", "https") or not host:
            raise UnsafeVendorUrl(f"only http(s) URLs are fetched, not {url[:120]!r}")
        if parts.username is not None or parts.password is not None:
            raise UnsafeVendorUrl(f"a URL with credentials is never fetched ({host})")
        trusted = self.trusts(host, port)
        if parts.scheme != "https" and not trusted:
            raise UnsafeVendorUrl(f"plain http is fetched only from trusted hosts, not {host}")
        if _other_ipv4_spelling(host) and not trusted:
            raise UnsafeVendorUrl(f"{host} is an IPv4 address written other than as a dotted quad")
        literal = _ip_literal(host)
        if literal is not None and not trusted and not is_public_address(literal):
            raise UnsafeVendorUrl(f"{host} is not a public address")
        return parts

    def allowed_addresses(self, host: str, port: int, addresses: Iterable[str]) -> list[str]:
        """Of the addresses ``host`` resolved to, those it may connect to (all, for a trusted host).

        None allowed is a ``PermissionError``: an ``OSError``, as both clients' resolvers must
        raise, and never one a DNS failure raises, so the clients can tell a refusal apart."""
        found = list(addresses)
        if self.trusts(host, port):
            return found
        public = [address for address in found if is_public_address(ipaddress.ip_address(address))]
        if not public:
            raise PermissionError(f"{host} resolves only to non-public addresses")
        return public


class CheckedResolver(AbstractResolver):
    """aiohttp's resolver: the name looked up once through ``names``, only the addresses the
    policy allows kept, and those handed to the connector, which connects to them and looks
    nothing up again: the address checked is the address connected to (no DNS rebinding)."""

    def __init__(self, policy: OutboundPolicy, names: NameResolver | None = None) -> None:
        self._policy = policy
        self._names = names or SystemResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await self._names.addresses(host, port)
        allowed = self._policy.allowed_addresses(host, port, found)  # PermissionError: none allowed
        results = [_numeric(host, address, port) for address in allowed]
        return [result for result in results if family in (socket.AF_UNSPEC, result["family"])]

    async def close(self) -> None:
        pass


def _numeric(host: str, address: str, port: int) -> ResolveResult:
    """An address as aiohttp's connector takes it: numeric, so nothing resolves it again."""
    family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    return ResolveResult(hostname=host, host=address, port=port, family=family, proto=0,
                         flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV)
