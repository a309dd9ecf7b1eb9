"""The HttpClient contract, continued: the outbound policy and the byte caps hold for both clients.

Each test runs once per implementation (``kind`` in conftest.py), built as the wiring builds a
route's client: ``make_http_client(kind, policy=...)`` with the route's origin trusted. A second
scripted server on loopback plays an internal service (a metadata endpoint, Redis, an admin
port) that must never be reached: it counts every connection, so "refused" means refused before
connecting. Names are resolved by the client's own checked resolver, so ``localhost`` (a name
that resolves to loopback) is refused at the address, not by its spelling.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest

from backends.vendors.http import HttpClient, HttpClientKind, make_http_client
from backends.vendors.url_policy import OutboundPolicy
from core.errors import UnsafeVendorUrl, VendorBodyTooLarge, VendorProtocolError, VendorUnavailable
from tests.backends.vendors.http.scripted_server import JSON_BODY, ScriptedServer, pattern, prepare_gzip_bomb
from tests.memory_peak import heap_peak

BUDGET_S = 5.0
MIB = 1024 * 1024


@pytest.fixture
async def guarded(kind: HttpClientKind, server: ScriptedServer) -> AsyncIterator[HttpClient]:
    """A route's client: its own origin (the scripted vendor on loopback) trusted, nothing else."""
    built = make_http_client(kind, policy=OutboundPolicy.trusting([server.base_url]))
    yield built
    await built.aclose()


async def get(client: HttpClient, url: str, *, follow: bool = True, max_bytes: int | None = None) -> bytes:
    answer = await client.request("GET", url, {}, None, BUDGET_S, follow_redirects=follow, max_bytes=max_bytes)
    return answer.body


async def test_the_trusted_origin_is_called_over_http_at_a_loopback_address(
    guarded: HttpClient, server: ScriptedServer
) -> None:
    assert await get(guarded, f"{server.base_url}/json") == JSON_BODY


def internal_urls(internal: ScriptedServer) -> list[str]:
    port = internal.port
    return [
        f"http://127.0.0.1:{port}/json",  # plain http off the trusted origin
        f"https://127.0.0.1:{port}/json",  # a loopback literal
        f"https://localhost:{port}/json",  # a name that resolves to loopback: the resolver refuses it
        f"https://[::ffff:127.0.0.1]:{port}/json",  # IPv4-mapped IPv6
        # 127.0.0.1 as the C library also reads it: aiohttp before 3.14 took these for address
        # literals and connected to them without asking its (checked) resolver
        f"https://2130706433:{port}/json", f"https://127.1:{port}/json", f"https://017700000001:{port}/json",
        f"https://0x7f.0.0.1:{port}/json", f"https://127.000.000.001:{port}/json",
        "https://169.254.169.254/latest/meta-data/",  # cloud metadata
        "https://10.1.2.3/internal",
        "https://[fd00:ec2::254]/latest/meta-data/",
    ]


async def test_internal_addresses_are_refused_before_connecting(
    guarded: HttpClient, internal: ScriptedServer
) -> None:
    for url in internal_urls(internal):
        with pytest.raises(UnsafeVendorUrl):
            await get(guarded, url)
    assert internal.connections == 0


async def test_a_name_resolving_to_loopback_is_refused_by_the_resolver(
    guarded: HttpClient, internal: ScriptedServer
) -> None:
    """The URL's form is allowed (https, a name): only the resolved address gives it away."""
    with pytest.raises(UnsafeVendorUrl, match="resolves only to addresses the outbound policy refuses"):
        await get(guarded, f"https://localhost:{internal.port}/json")
    assert internal.connections == 0


@pytest.mark.parametrize("target", ["http://127.0.0.1:{port}/json", "https://localhost:{port}/json"])
async def test_a_redirect_to_an_internal_address_is_refused_at_that_hop(
    guarded: HttpClient, server: ScriptedServer, internal: ScriptedServer, target: str
) -> None:
    hop = target.format(port=internal.port)
    with pytest.raises(UnsafeVendorUrl):
        await get(guarded, f"{server.base_url}/redirect-to?{quote(hop, safe='')}")
    assert [r.target.split("?")[0] for r in server.received] == ["/redirect-to"]
    assert internal.connections == 0


async def test_credentials_in_a_url_are_never_sent(guarded: HttpClient, server: ScriptedServer) -> None:
    """``user:pw@`` would go out as Basic auth: refused even on the trusted origin."""
    with pytest.raises(UnsafeVendorUrl, match="credentials"):
        await get(guarded, server.base_url.replace("http://", "http://user:pw@") + "/json")
    assert server.connections == 0


async def test_a_host_the_operator_trusts_may_be_private(kind: HttpClientKind, internal: ScriptedServer) -> None:
    """A private GPU worker or an internal CDN, listed by name: resolved, and allowed."""
    client = make_http_client(kind, policy=OutboundPolicy.trusting([f"localhost:{internal.port}"]))
    try:
        assert await get(client, f"http://localhost:{internal.port}/json") == JSON_BODY
    finally:
        await client.aclose()


async def test_redirects_stop_at_the_clients_limit(kind: HttpClientKind, server: ScriptedServer) -> None:
    client = make_http_client(kind, policy=OutboundPolicy.trusting([server.base_url]), max_redirects=2)
    try:
        assert await get(client, f"{server.base_url}/redirect/2") == b"arrived"
        with pytest.raises(VendorProtocolError, match="more than 2"):
            await get(client, f"{server.base_url}/redirect/3")
    finally:
        await client.aclose()


# Byte caps


@pytest.mark.parametrize("path", ["large", "large-chunked"])
async def test_a_calls_own_cap_is_smaller_than_the_clients(
    guarded: HttpClient, server: ScriptedServer, path: str
) -> None:
    assert await get(guarded, f"{server.base_url}/{path}/{MIB}", max_bytes=MIB) == pattern(MIB)
    with pytest.raises(VendorBodyTooLarge):
        await get(guarded, f"{server.base_url}/{path}/{MIB + 1}", max_bytes=MIB)


async def test_an_announced_length_past_the_cap_is_refused_unread(guarded: HttpClient, server: ScriptedServer) -> None:
    """The server announces 1 GiB and sends ten bytes: a client that read on would time out."""
    with pytest.raises(VendorBodyTooLarge, match="announced"):
        await get(guarded, f"{server.base_url}/announce/{1024 * MIB}", max_bytes=MIB)


async def test_a_gzip_bomb_stops_at_the_cap_counted_after_decompression(
    guarded: HttpClient, server: ScriptedServer
) -> None:
    """256 MiB of zeros arrive as about 256 KB of gzip; the cap (4 MiB) counts what it inflates to,
    and memory stays near the cap (a decoder that inflates a whole 64 KB chunk at once makes 64 MB)."""
    prepare_gzip_bomb(256)
    with heap_peak() as peak, pytest.raises(VendorBodyTooLarge):
        await get(guarded, f"{server.base_url}/gzip-bomb/256", max_bytes=4 * MIB)
    assert peak.mb < 24, f"a gzip bomb grew the heap by {peak.mb:.0f} MB"


async def test_a_gzip_body_within_the_cap_is_whole(guarded: HttpClient, server: ScriptedServer) -> None:
    assert await get(guarded, f"{server.base_url}/gzip-bomb/2", max_bytes=2 * MIB) == bytes(2 * MIB)


async def test_a_deflate_body_is_decoded(guarded: HttpClient, server: ScriptedServer) -> None:
    assert await get(guarded, f"{server.base_url}/deflate") == JSON_BODY


async def test_a_broken_gzip_body_is_still_unavailable(guarded: HttpClient, server: ScriptedServer) -> None:
    with pytest.raises(VendorUnavailable):
        await get(guarded, f"{server.base_url}/bad-gzip")
