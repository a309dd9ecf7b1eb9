"""What is the lean client's own: its pool, and reading answers that arrive however they arrive.

The contract it shares with the other clients is in test_contract.py (and runs against it);
these tests drive it against a raw loopback server (``raw_server``) that writes exactly the
bytes each case needs, on asyncio's loop and on uvloop (conftest.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from backends.vendors.http import LeanClient
from backends.vendors.messages import HttpAnswer
from core.errors import VendorBodyTooLarge, VendorProtocolError, VendorTimeout, VendorUnavailable
from tests.backends.vendors.http.raw_server import ConnectionScript, RawConnection, RawServer, answer, chunked
from tests.backends.vendors.http.scripted_server import pattern
from tests.memory_peak import heap_peak

BUDGET_S = 5.0
MIB = 1024 * 1024


@pytest.fixture
async def client() -> AsyncIterator[LeanClient]:
    built = LeanClient()
    yield built
    await built.aclose()


async def serving(script: ConnectionScript) -> RawServer:
    return await RawServer(script).start()


@pytest.fixture
async def servers() -> AsyncIterator[list[RawServer]]:
    started: list[RawServer] = []
    yield started
    for server in started:
        await server.stop()


async def get(client: LeanClient, url: str, *, timeout: float = BUDGET_S, max_bytes: int | None = None) -> HttpAnswer:
    return await client.request("GET", url, {}, None, timeout, max_bytes=max_bytes)


async def keep_alive(connection: RawConnection) -> None:
    """Answers every request on the connection, numbered: ``c<connection>r<request>``."""
    count = 0
    while await connection.request() is not None:
        count += 1
        await connection.send(answer(f"c{connection.number}r{count}".encode()))


async def until_closed(client: LeanClient) -> None:
    """Wait until the client has seen the server close its idle connection."""
    async with asyncio.timeout(BUDGET_S):
        while client.open_connections:
            await asyncio.sleep(0.01)


# The pool


async def test_calls_in_turn_reuse_one_connection(client: LeanClient, servers: list[RawServer]) -> None:
    servers.append(server := await serving(keep_alive))
    bodies = [(await get(client, f"{server.url}/x")).body for _ in range(3)]
    assert bodies == [b"c1r1", b"c1r2", b"c1r3"]
    assert (server.connections, client.open_connections) == (1, 1)


async def test_calls_at_once_open_a_connection_each_and_then_keep_them(
    client: LeanClient, servers: list[RawServer]
) -> None:
    servers.append(server := await serving(keep_alive))
    await asyncio.gather(*(get(client, f"{server.url}/x") for _ in range(4)))
    await asyncio.gather(*(get(client, f"{server.url}/x") for _ in range(4)))
    assert (server.connections, client.open_connections) == (4, 4)


async def test_at_the_connection_limit_a_call_waits_for_a_connection(servers: list[RawServer]) -> None:
    servers.append(server := await serving(keep_alive))
    client = LeanClient(max_connections=1)
    try:
        answers = await asyncio.gather(*(get(client, f"{server.url}/x") for _ in range(3)))
    finally:
        await client.aclose()
    assert sorted(a.body for a in answers) == [b"c1r1", b"c1r2", b"c1r3"]
    assert server.connections == 1


async def test_connections_warmed_ahead_serve_the_calls_that_follow(
    client: LeanClient, servers: list[RawServer]
) -> None:
    servers.append(server := await serving(keep_alive))
    assert await client.warm(f"{server.url}/x", 3, BUDGET_S) == 3
    assert (server.connections, client.open_connections) == (3, 3)
    assert await client.warm(f"{server.url}/x", 3, BUDGET_S) == 0  # already there
    await asyncio.gather(*(get(client, f"{server.url}/x") for _ in range(3)))
    assert (server.connections, len(server.requests)) == (3, 3)


async def test_warming_stays_within_the_connection_limit(servers: list[RawServer]) -> None:
    servers.append(server := await serving(keep_alive))
    client = LeanClient(max_connections=2)
    try:
        assert await client.warm(f"{server.url}/x", 5, BUDGET_S) == 2
    finally:
        await client.aclose()
    assert server.connections == 2


async def test_a_connection_the_server_closed_while_idle_is_not_reused(
    client: LeanClient, servers: list[RawServer]
) -> None:
    async def one_answer_then_close(connection: RawConnection) -> None:
        await connection.request()
        await connection.send(answer(b"once"))  # keep-alive is not refused: the close comes unannounced

    servers.append(server := await serving(one_answer_then_close))
    assert (await get(client, f"{server.url}/x")).body == b"once"
    await until_closed(client)
    assert (await get(client, f"{server.url}/x")).body == b"once"
    assert server.connections == 2


@pytest.mark.parametrize("answered", [answer(b"bye", "connection: close"), answer(b"bye", version="1.0")],
                         ids=["connection-close", "http-1.0"])
async def test_an_answer_that_ends_its_connection_is_not_followed_on_it(
    client: LeanClient, servers: list[RawServer], answered: bytes
) -> None:
    async def answer_and_linger(connection: RawConnection) -> None:
        while await connection.request() is not None:
            await connection.send(answered)  # and keeps the socket open: only the header says "close"

    servers.append(server := await serving(answer_and_linger))
    for _ in range(2):
        assert (await get(client, f"{server.url}/x")).body == b"bye"
    assert server.connections == 2


async def test_a_connection_whose_answer_was_refused_unread_is_never_reused(
    client: LeanClient, servers: list[RawServer]
) -> None:
    async def announce_then_serve(connection: RawConnection) -> None:
        if connection.number == 1:
            await connection.request()
            await connection.send(b"HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n" + bytes(10))
            await connection.request()  # a client that reused this connection would wait here
        else:
            await keep_alive(connection)

    servers.append(server := await serving(announce_then_serve))
    with pytest.raises(VendorBodyTooLarge, match="announced 5000"):
        await get(client, f"{server.url}/x", max_bytes=1000)
    assert (await get(client, f"{server.url}/x")).body == b"c2r1"
    assert (server.connections, len(server.requests)) == (2, 2)  # not sent on the first, then again


async def test_a_connection_whose_answer_timed_out_half_read_is_never_reused(
    client: LeanClient, servers: list[RawServer]
) -> None:
    async def half_then_serve(connection: RawConnection) -> None:
        if connection.number == 1:
            await connection.request()
            await connection.send(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n" + bytes(50))
            await connection.request()  # the other 50 never come
        else:
            await keep_alive(connection)

    servers.append(server := await serving(half_then_serve))
    with pytest.raises(VendorTimeout):
        await get(client, f"{server.url}/x", timeout=0.2)
    assert (await get(client, f"{server.url}/x")).body == b"c2r1"
    assert (server.connections, len(server.requests)) == (2, 2)  # not sent on the first, then again


@pytest.mark.parametrize("answered", [answer(b"ok"), chunked(b"ok", 1)], ids=["sized", "chunked"])
async def test_a_connection_the_server_spoke_on_out_of_turn_is_not_reused(
    client: LeanClient, servers: list[RawServer], answered: bytes
) -> None:
    async def answer_with_a_tail(connection: RawConnection) -> None:
        await connection.request()
        await connection.send(answered + b"HTTP/1.1 200 OK\r\n")  # bytes nobody asked for
        if connection.number == 1:
            await connection.request()
        else:
            await keep_alive(connection)

    servers.append(server := await serving(answer_with_a_tail))
    assert (await get(client, f"{server.url}/x")).body == b"ok"
    assert (await get(client, f"{server.url}/x")).body == b"ok"
    assert (server.connections, len(server.requests)) == (2, 2)


@pytest.mark.parametrize(("method", "resent"), [("GET", True), ("POST", False)])
async def test_a_pooled_connection_closed_under_a_request_resends_it_only_if_idempotent(
    client: LeanClient, servers: list[RawServer], method: str, resent: bool
) -> None:
    """The server's idle timeout fired as the second request arrived: it closes unanswered. A GET
    goes out again on a new connection; a POST (a create the vendor may bill) never does."""
    async def close_on_the_second(connection: RawConnection) -> None:
        if connection.number == 1:
            await connection.request()
            await connection.send(answer(b"first"))
            await connection.request()  # and closes, unanswered
        else:
            await keep_alive(connection)

    servers.append(server := await serving(close_on_the_second))
    assert (await client.request(method, f"{server.url}/x", {}, None, BUDGET_S)).body == b"first"
    if resent:
        assert (await client.request(method, f"{server.url}/x", {}, None, BUDGET_S)).body == b"c2r1"
        assert (server.connections, len(server.requests)) == (2, 3)
    else:
        with pytest.raises(VendorUnavailable, match="broke off"):
            await client.request(method, f"{server.url}/x", {}, None, BUDGET_S)
        assert (server.connections, len(server.requests)) == (1, 2)


# Reading answers


@pytest.mark.parametrize("piece", [1, 7, 1000])
@pytest.mark.parametrize("framing", ["sized", "chunked"])
async def test_an_answer_in_many_small_pieces_is_assembled_whole(
    client: LeanClient, servers: list[RawServer], piece: int, framing: str
) -> None:
    body = pattern(20_011)
    whole = answer(body, "x-note: a head split anywhere") if framing == "sized" else chunked(body, 3001)

    async def trickle(connection: RawConnection) -> None:
        while await connection.request() is not None:
            await connection.send_in_pieces(whole, piece)

    servers.append(server := await serving(trickle))
    for _ in range(2):  # the second on the same connection: nothing of the first is left over
        # A byte a write is 22,000 turns of the loop: on a loaded machine more than BUDGET_S, and
        # the budget is not what this test is about.
        received = await get(client, f"{server.url}/x", timeout=60.0)
        assert (received.status, received.body) == (200, body)
    assert server.connections == 1


async def test_a_large_sized_answer_is_read_whole_again_and_again(client: LeanClient, servers: list[RawServer]) -> None:
    """The buffer a body is read into is kept and read into again: no answer shows another's bytes."""
    sizes = [3 * MIB + 1, 2 * MIB, 3 * MIB + 1, 70_000, 3 * MIB]

    async def sized(connection: RawConnection) -> None:
        for size in sizes:
            await connection.request()
            await connection.send(answer(pattern(size)[::-1]))

    servers.append(server := await serving(sized))
    for size in sizes:
        assert (await get(client, f"{server.url}/x")).body == pattern(size)[::-1]


async def test_a_view_of_a_lent_body_keeps_its_bytes_while_later_answers_are_read(
    client: LeanClient, servers: list[RawServer]
) -> None:
    """The body is the buffer the answer was read into, lent: a view of it (as the gateway hands
    the base64 to the socket) outlives the answer and sees no later answer's bytes."""
    size = 2 * MIB

    async def sized(connection: RawConnection) -> None:
        for fill in range(4):
            await connection.request()
            await connection.send(answer(bytes([fill]) * size))

    servers.append(server := await serving(sized))
    first = await get(client, f"{server.url}/x")
    assert isinstance(first.body, bytearray) and first.body == bytes(size)
    view = memoryview(first.body).toreadonly()[size // 2:]
    del first
    for fill in range(1, 4):
        assert (await get(client, f"{server.url}/x")).body == bytes([fill]) * size
        assert view == bytes(size - size // 2), "a later answer was read into a buffer still viewed"


async def test_a_declared_length_past_the_cap_is_refused_before_any_buffer_is_made(
    client: LeanClient, servers: list[RawServer]
) -> None:
    async def announce(connection: RawConnection) -> None:
        await connection.request()
        await connection.send(f"HTTP/1.1 200 OK\r\ncontent-length: {256 * MIB + 1}\r\n\r\n".encode() + bytes(10))
        await connection.request()

    servers.append(server := await serving(announce))
    with heap_peak() as peak, pytest.raises(VendorBodyTooLarge, match="announced"):
        await get(client, f"{server.url}/x", max_bytes=256 * MIB)
    assert peak.mb < 1, f"reading a refused body grew the heap by {peak.mb:.0f} MB"


@pytest.mark.parametrize("cut", [
    b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n" + bytes(500),
    b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n",
    b"HTTP/1.1 200 OK\r\ncontent-le",
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10\r\n0123456789",
], ids=["half-a-body", "no-body", "half-a-head", "half-a-chunk"])
async def test_an_answer_cut_short_by_a_close_is_an_error_never_a_short_body(
    client: LeanClient, servers: list[RawServer], cut: bytes
) -> None:
    async def cut_short(connection: RawConnection) -> None:
        await connection.request()
        await connection.send(cut)

    servers.append(server := await serving(cut_short))
    with pytest.raises(VendorUnavailable, match="broke off"):
        await get(client, f"{server.url}/x")


async def test_a_body_delimited_by_the_close_ends_there(client: LeanClient, servers: list[RawServer]) -> None:
    async def until_close(connection: RawConnection) -> None:
        await connection.request()
        await connection.send_in_pieces(b"HTTP/1.1 200 OK\r\n\r\n" + pattern(5000), 999)

    servers.append(server := await serving(until_close))
    assert (await get(client, f"{server.url}/x")).body == pattern(5000)
    assert (await get(client, f"{server.url}/x")).body == pattern(5000)
    assert server.connections == 2


async def test_an_interim_answer_is_passed_over(client: LeanClient, servers: list[RawServer]) -> None:
    async def continue_first(connection: RawConnection) -> None:
        while await connection.request() is not None:
            await connection.send(b"HTTP/1.1 100 Continue\r\n\r\n" + answer(b"final", status="201 Created"))

    servers.append(server := await serving(continue_first))
    for _ in range(2):
        received = await get(client, f"{server.url}/x")
        assert (received.status, received.body) == (201, b"final")
    assert server.connections == 1


@pytest.mark.parametrize("head", [
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n",
    b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\n" + b"x-long: " + b"a" * 70_000 + b"\r\n\r\n",
], ids=["unknown-transfer-coding", "two-lengths", "oversized-head"])
async def test_a_head_we_cannot_read_is_unavailable(client: LeanClient, servers: list[RawServer], head: bytes) -> None:
    async def odd(connection: RawConnection) -> None:
        await connection.request()
        await connection.send(head)
        await connection.request()

    servers.append(server := await serving(odd))
    with pytest.raises(VendorUnavailable, match="broke off"):
        await get(client, f"{server.url}/x")


# Writing requests


async def test_a_field_that_would_split_the_request_is_refused_before_connecting(
    client: LeanClient, servers: list[RawServer]
) -> None:
    servers.append(server := await serving(keep_alive))
    with pytest.raises(VendorProtocolError, match="cannot send"):
        await client.request("GET", f"{server.url}/x", {"x-id": "1\r\nx-admin: yes"}, None, BUDGET_S)
    assert server.connections == 0


async def test_the_request_goes_out_as_one_http_1_1_message(client: LeanClient, servers: list[RawServer]) -> None:
    servers.append(server := await serving(keep_alive))
    await client.request("POST", f"{server.url}/v1/images?a=1#frag", {"Authorization": "Bearer k"}, b"{}", BUDGET_S)
    [sent] = server.requests
    head, _, body = sent.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /v1/images?a=1 HTTP/1.1"
    assert f"host: {server.url.removeprefix('http://')}" in lines
    assert {"Authorization: Bearer k", "content-length: 2", "user-agent: boltgate"} <= set(lines)
    assert body == b"{}"
