"""DNS rebinding, played by a hostile resolver: a name that answers a public address to the first
lookup and loopback to every later one. Each client looks a name up once, checks that answer and
connects to it, so the later answer is never connected to (or, looked up for a new connection, is
refused); an internal server on loopback counts every connection to prove it.

Every client takes the resolver as an argument (``names``, a ``NameResolver``). Where their
connections go is observed through each one's own connect seam (the lean client's and aiohttp's
``socket_factory``, httpcore's network backend), which records the address and refuses it: no
packet leaves for the public address.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpcore
import httpx
import pytest

from backends.vendors.http import AiohttpClient, HttpClient, HttpClientKind, HttpxClient, LeanClient, make_http_client
from backends.vendors.http.checked_network import checked_transport
from backends.vendors.url_policy import OutboundPolicy
from core.errors import UnsafeVendorUrl, VendorUnavailable
from tests.backends.vendors.http.scripted_server import JSON_BODY, ScriptedServer

PUBLIC = "93.184.215.14"
"""A globally routed address (never connected to here: the recording network refuses it)."""
NAME = "rebind.test"
"""A name the system cannot resolve: any answer for it came from the injected resolver."""
BUDGET_S = 5.0


class HostileDns:
    """Answers ``first`` to the first lookup and ``then`` to every later one; counts lookups."""

    def __init__(self, first: list[str], then: list[str] | None = None) -> None:
        self.first = first
        self.then = first if then is None else then
        self.lookups: list[str] = []

    async def addresses(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        return list(self.first if len(self.lookups) == 1 else self.then)


class RecordingNetwork(httpcore.AsyncNetworkBackend):
    """Where connections would go: recorded, then refused as an unreachable network."""

    def __init__(self) -> None:
        self.connected: list[tuple[str, int]] = []

    def socket(self, addr_info: tuple[Any, ...]) -> socket.socket:
        """The lean client's and aiohttp's ``socket_factory``: called with each address connected to."""
        address, port = addr_info[4][:2]
        self.connected.append((address, port))
        raise OSError(errno.ENETUNREACH, "the test network reaches nothing")

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        self.connected.append((host, port))
        raise httpcore.ConnectError("the test network reaches nothing")

    async def sleep(self, seconds: float) -> None:
        pass


@pytest.fixture
def network() -> RecordingNetwork:
    return RecordingNetwork()


@pytest.fixture
async def observed(kind: HttpClientKind, network: RecordingNetwork) -> AsyncIterator[Any]:
    """``observed(dns)``: a client of ``kind`` trusting nothing, resolving through ``dns``, its
    connections recorded by ``network``."""
    made: list[HttpClient] = []

    def make(dns: HostileDns) -> HttpClient:
        policy = OutboundPolicy()
        if kind == "lean":
            made.append(LeanClient(policy=policy, names=dns, socket_factory=network.socket))
        elif kind == "aiohttp":
            made.append(AiohttpClient(policy=policy, names=dns, socket_factory=network.socket))
        else:
            transport = checked_transport(httpx.Limits(), policy, names=dns, network=network)
            made.append(HttpxClient(transport=transport, policy=policy))
        return made[-1]

    yield make
    for client in made:
        await client.aclose()


async def get(client: HttpClient, url: str) -> bytes:
    return (await client.request("GET", url, {}, None, BUDGET_S)).body


async def test_a_name_that_rebinds_to_loopback_is_connected_to_only_at_the_checked_address(
    observed: Any, network: RecordingNetwork, internal: ScriptedServer
) -> None:
    dns = HostileDns(first=[PUBLIC], then=["127.0.0.1"])
    client = observed(dns)
    url = f"https://{NAME}:{internal.port}/json"

    with pytest.raises(VendorUnavailable):
        await get(client, url)
    assert dns.lookups == [NAME]  # looked up once: the answer checked is the answer connected to
    assert network.connected == [(PUBLIC, internal.port)]

    # A new connection: either the checked answer is reused (lean's and aiohttp's DNS cache) or the name is
    # looked up again and its loopback answer refused. Never connected to loopback.
    with pytest.raises((VendorUnavailable, UnsafeVendorUrl)):
        await get(client, url)
    assert {address for address, _ in network.connected} == {PUBLIC}
    assert internal.connections == 0


async def test_of_an_answer_mixing_private_and_public_addresses_only_the_public_is_connected_to(
    observed: Any, network: RecordingNetwork, internal: ScriptedServer
) -> None:
    client = observed(HostileDns(first=["127.0.0.1", "10.0.0.5", "169.254.169.254", PUBLIC]))
    with pytest.raises(VendorUnavailable):
        await get(client, f"https://{NAME}:{internal.port}/json")
    assert network.connected == [(PUBLIC, internal.port)]
    assert internal.connections == 0


async def test_a_name_answering_only_loopback_is_refused_before_any_connection(
    observed: Any, network: RecordingNetwork, internal: ScriptedServer
) -> None:
    dns = HostileDns(first=["127.0.0.1"], then=[PUBLIC])
    with pytest.raises(UnsafeVendorUrl, match="resolves only to addresses the outbound policy refuses"):
        await get(observed(dns), f"https://{NAME}:{internal.port}/json")
    assert dns.lookups == [NAME] and network.connected == [] and internal.connections == 0


async def test_the_client_connects_where_the_injected_resolver_says_and_looks_up_nothing_else(
    kind: HttpClientKind, internal: ScriptedServer
) -> None:
    """Over the real network, as the wiring builds a client: a trusted name the system cannot
    resolve reaches the loopback server the injected resolver named, after one lookup."""
    dns = HostileDns(first=["127.0.0.1"])
    client = make_http_client(kind, policy=OutboundPolicy.trusting([f"{NAME}:{internal.port}"]), names=dns)
    try:
        assert await get(client, f"http://{NAME}:{internal.port}/json") == JSON_BODY
    finally:
        await client.aclose()
    assert dns.lookups == [NAME] and internal.connections == 1
