"""The HttpClient contract: lean, aiohttp and httpx behave the same, case by case, on real sockets.

Every test runs once per implementation (the ``kind`` fixture in conftest.py is parametrised)
against a scripted loopback server that misbehaves the way vendors and CDNs do.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from urllib.parse import quote

import orjson
import pytest

from backends.vendors.http import AiohttpClient, HttpClient, HttpClientKind, HttpxClient, LeanClient
from backends.vendors.http.base import MAX_REDIRECTS
from backends.vendors.messages import HttpAnswer
from core.errors import VendorProtocolError, VendorTimeout, VendorUnavailable
from tests.backends.vendors.http.conftest import MakeClient
from tests.backends.vendors.http.scripted_server import (
    JSON_BODY,
    TRICKLE_BYTES,
    TRICKLE_INTERVAL_S,
    ScriptedServer,
    pattern,
)

BUDGET_S = 5.0
SHORT_BUDGET_S = 0.3
MIB = 1024 * 1024


async def get(client: HttpClient, url: str, *, timeout: float = BUDGET_S, follow: bool = False) -> HttpAnswer:
    return await client.request("GET", url, {}, None, timeout, follow_redirects=follow)


def test_the_setting_names_each_implementation(client: HttpClient, kind: HttpClientKind) -> None:
    assert type(client) is {"lean": LeanClient, "aiohttp": AiohttpClient, "httpx": HttpxClient}[kind]


# The exchange itself


async def test_a_json_answer_arrives_whole_and_the_request_as_sent(client: HttpClient, server: ScriptedServer) -> None:
    sent = orjson.dumps({"prompt": "a lighthouse", "n": 1})
    answer = await client.request(
        "POST", f"{server.base_url}/json", {"Authorization": "Bearer k", "Content-Type": "application/json"},
        sent, BUDGET_S,
    )
    assert (answer.status, answer.body, answer.json()) == (200, JSON_BODY, orjson.loads(JSON_BODY))
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["x-request-id"] == "req-1"
    [received] = server.received
    assert (received.method, received.target, received.body) == ("POST", "/json", sent)
    assert received.headers["authorization"] == "Bearer k"
    assert received.headers["content-type"] == "application/json"
    assert received.headers["content-length"] == str(len(sent))


async def test_both_clients_introduce_themselves_alike(client: HttpClient, server: ScriptedServer) -> None:
    await get(client, f"{server.base_url}/json")
    [received] = server.received
    assert received.headers["user-agent"] == "boltgate"
    assert received.headers["accept"] == "*/*"
    assert received.headers["accept-encoding"] == "gzip, deflate"


async def test_a_calls_own_headers_win_over_the_defaults(client: HttpClient, server: ScriptedServer) -> None:
    await client.request("GET", f"{server.base_url}/json", {"Accept": "application/json", "User-Agent": "x/1"},
                         None, BUDGET_S)
    [received] = server.received
    assert (received.headers["accept"], received.headers["user-agent"]) == ("application/json", "x/1")


async def test_no_cookie_is_kept_between_calls(client: HttpClient, server: ScriptedServer) -> None:
    """Vendors' load balancers set cookies; one call must not carry another's state."""
    await get(client, f"{server.base_url}/cookie")
    await get(client, f"{server.base_url}/json")
    assert [r.headers.get("cookie") for r in server.received] == [None, None]


async def test_the_url_reaches_the_server_byte_for_byte(client: HttpClient, server: ScriptedServer) -> None:
    """Signed output URLs break when a client re-quotes them."""
    target = "/files/a%2Fb%3D.png?X-Amz-Signature=ab%2Bcd%3D&x=1+2&tilde=%7E&empty="
    await get(client, server.base_url + target)
    assert [r.target for r in server.received] == [target]


@pytest.mark.parametrize("status", [200, 201, 204, 302, 400, 401, 402, 404, 422, 429, 500, 503])
async def test_any_status_is_an_answer_with_its_headers(
    client: HttpClient, server: ScriptedServer, status: int
) -> None:
    answer = await get(client, f"{server.base_url}/status/{status}")
    expected_body = b"" if status == 204 else orjson.dumps({"error": {"code": f"E{status}"}})
    assert (answer.status, answer.body) == (status, expected_body)
    assert answer.headers["retry-after"] == "7"
    assert answer.headers["x-repeated"] == "one, two"
    assert all(name == name.lower() for name in answer.headers)


async def test_a_gzip_body_is_decoded(client: HttpClient, server: ScriptedServer) -> None:
    answer = await get(client, f"{server.base_url}/gzip")
    assert answer.body == JSON_BODY


async def test_answers_without_a_body_read_empty_however_many_come(client: HttpClient, server: ScriptedServer) -> None:
    # aiohttp reads every body-less answer from one shared empty stream, whose state the first
    # read changes for good: the third answer here once spun the event loop forever.
    for _ in range(3):
        answer = await client.request("HEAD", f"{server.base_url}/head", {}, None, BUDGET_S)
        assert (answer.status, answer.body, answer.headers["content-length"]) == (200, b"", "1000")


async def test_calls_in_turn_share_one_connection(client: HttpClient, server: ScriptedServer) -> None:
    for _ in range(3):
        await get(client, f"{server.base_url}/json")
    assert (len(server.received), server.connections) == (3, 1)


# One total time budget


async def test_a_server_that_never_answers_times_out(client: HttpClient, server: ScriptedServer) -> None:
    with pytest.raises(VendorTimeout) as caught:
        await get(client, f"{server.base_url}/silent", timeout=SHORT_BUDGET_S)
    assert caught.value.retryable


async def test_a_body_trickled_past_the_budget_times_out(client: HttpClient, server: ScriptedServer) -> None:
    """Each byte comes well within the budget; the whole body would take 10 s. The budget is total."""
    assert TRICKLE_INTERVAL_S < SHORT_BUDGET_S < TRICKLE_BYTES * TRICKLE_INTERVAL_S
    with pytest.raises(VendorTimeout):
        await get(client, f"{server.base_url}/trickle", timeout=SHORT_BUDGET_S)


@pytest.mark.parametrize("spent", [0.0, -1.0])
async def test_a_spent_budget_times_out_before_connecting(
    client: HttpClient, server: ScriptedServer, spent: float
) -> None:
    with pytest.raises(VendorTimeout):
        await get(client, f"{server.base_url}/json", timeout=spent)
    assert server.connections == 0


async def test_a_timeout_leaves_the_client_usable(client: HttpClient, server: ScriptedServer) -> None:
    with pytest.raises(VendorTimeout):
        await get(client, f"{server.base_url}/trickle", timeout=SHORT_BUDGET_S)
    answer = await get(client, f"{server.base_url}/json")
    assert (answer.status, answer.body) == (200, JSON_BODY)


async def test_a_cancelled_call_raises_cancelled_and_hangs_up(client: HttpClient, server: ScriptedServer) -> None:
    """The client went away: the task is cancelled and the vendor sees the connection close."""
    call = asyncio.create_task(get(client, f"{server.base_url}/silent"))
    while not server.received:
        await asyncio.sleep(0.01)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await asyncio.wait_for(server.closed_by_client.wait(), BUDGET_S)


# Broken exchanges


@pytest.mark.parametrize(
    "path", ["/reset-mid-body", "/reset-before-answer", "/truncated", "/truncated-chunked", "/garbage", "/bad-gzip"]
)
async def test_a_broken_exchange_is_unavailable(client: HttpClient, server: ScriptedServer, path: str) -> None:
    with pytest.raises(VendorUnavailable) as caught:
        await get(client, f"{server.base_url}{path}?token=secret")
    assert caught.value.retryable
    assert server.base_url.removeprefix("http://") in caught.value.message
    assert "secret" not in caught.value.message


@pytest.fixture
def refusing_url() -> Iterator[str]:
    """A port that is bound but not listening: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/json"


async def test_a_refused_connection_is_unavailable(client: HttpClient, refusing_url: str) -> None:
    with pytest.raises(VendorUnavailable, match="unreachable"):
        await get(client, refusing_url)


# Redirects


async def test_an_api_call_answers_a_redirect_as_it_is(client: HttpClient, server: ScriptedServer) -> None:
    answer = await get(client, f"{server.base_url}/redirect/1")
    assert (answer.status, answer.headers["location"]) == (302, "/redirect/0")
    assert len(server.received) == 1


async def test_an_output_fetch_follows_up_to_the_hop_limit(client: HttpClient, server: ScriptedServer) -> None:
    answer = await get(client, f"{server.base_url}/redirect/{MAX_REDIRECTS}", follow=True)
    assert (answer.status, answer.body) == (200, b"arrived")
    assert len(server.received) == MAX_REDIRECTS + 1


async def test_one_hop_past_the_limit_is_a_protocol_error(client: HttpClient, server: ScriptedServer) -> None:
    with pytest.raises(VendorProtocolError):
        await get(client, f"{server.base_url}/redirect/{MAX_REDIRECTS + 1}", follow=True)
    assert len(server.received) <= MAX_REDIRECTS + 1


async def test_a_redirect_to_another_host_is_followed(client: HttpClient, server: ScriptedServer) -> None:
    cdn = await ScriptedServer().start()
    try:
        answer = await get(client, f"{server.base_url}/redirect-to?{quote(cdn.base_url + '/json', safe='')}",
                           follow=True)
    finally:
        await cdn.stop()
    assert (answer.status, answer.body) == (200, JSON_BODY)
    assert [r.target for r in cdn.received] == ["/json"]


@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://files.test/1.png", "http://[::1/broken"])
async def test_a_redirect_where_we_do_not_go_is_a_protocol_error(
    client: HttpClient, server: ScriptedServer, location: str
) -> None:
    with pytest.raises(VendorProtocolError):
        await get(client, f"{server.base_url}/redirect-to?{quote(location, safe='')}", follow=True)


@pytest.mark.parametrize("url", ["ftp://files.test/1.png", "file:///etc/passwd", "/relative.png", "data:,hi"])
async def test_a_url_that_is_not_http_is_refused(client: HttpClient, url: str) -> None:
    with pytest.raises(VendorProtocolError):
        await get(client, url)


@pytest.mark.parametrize("value", ["k\r\nx-injected: 1", "k\nx-injected: 1", "k\r", "k\0"])
async def test_a_header_that_would_split_the_request_is_refused_unsent(
    client: HttpClient, server: ScriptedServer, value: str
) -> None:
    """Header values come from settings (a key pasted with its newline): refused as the route's
    protocol error, which fails over, never an unmapped error (a 500) or a smuggled header."""
    with pytest.raises(VendorProtocolError):
        await client.request("GET", f"{server.base_url}/json", {"Authorization": value}, None, BUDGET_S)
    assert server.received == []


# Large bodies


@pytest.mark.parametrize("path", ["large", "large-chunked"])
async def test_a_large_body_arrives_intact(client: HttpClient, server: ScriptedServer, path: str) -> None:
    answer = await get(client, f"{server.base_url}/{path}/{16 * MIB + 7}")
    assert answer.body == pattern(16 * MIB + 7)


@pytest.mark.parametrize("path", ["large", "large-chunked"])
async def test_a_body_past_the_cap_is_a_protocol_error(
    make_client: MakeClient, server: ScriptedServer, path: str
) -> None:
    client = make_client(max_answer_bytes=MIB)
    assert (await get(client, f"{server.base_url}/{path}/{MIB}")).body == pattern(MIB)
    with pytest.raises(VendorProtocolError, match="more than"):
        await get(client, f"{server.base_url}/{path}/{MIB + 1}")

