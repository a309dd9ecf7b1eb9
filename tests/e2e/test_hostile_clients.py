"""Hostile clients against the real gateway and its production server configuration.

Half-sent requests, endless headers, huge headers, slow bodies and more connections than the cap:
each is answered (408, 431, 503) and its connection closed, while ``/healthz`` keeps answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.backends.vendors.hostile import png_declaring
from tests.e2e.conftest import StartGateway, StartSimulator, route_to
from tests.e2e.gateway_server import GatewayServer
from tests.memory_peak import heap_peak

HALF_SENT = b"POST /v1/images/generations HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"


@pytest.fixture
def server(gateway: StartGateway) -> Iterator[GatewayServer]:
    yield gateway(server={"header_timeout_s": 1.0, "body_timeout_s": 1.0, "max_connections": 1500,
                          "max_header_bytes": 16 * 1024})


async def connect(server: GatewayServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = server.base_url.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


async def status_of(reader: asyncio.StreamReader, timeout: float = 10.0) -> int:
    """The status of the answer on ``reader``, after which the server must have closed it."""
    head = await asyncio.wait_for(reader.readline(), timeout)
    await asyncio.wait_for(reader.read(), timeout)  # returns at EOF only: the server closed
    return int(head.split()[1])


async def healthz(server: GatewayServer) -> int:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"{server.base_url}/healthz", timeout=5.0)).status_code


@pytest.fixture
async def held() -> AsyncIterator[list[asyncio.StreamWriter]]:
    writers: list[asyncio.StreamWriter] = []
    yield writers
    for writer in writers:
        writer.close()


async def test_a_thousand_half_sent_requests_leave_healthz_answering_and_are_cut_off(
    server: GatewayServer, held: list[asyncio.StreamWriter]
) -> None:
    readers = []
    for _ in range(1000):
        reader, writer = await connect(server)
        writer.write(HALF_SENT)
        readers.append(reader)
        held.append(writer)
    await asyncio.gather(*(writer.drain() for writer in held))

    assert await healthz(server) == 200

    statuses = await asyncio.gather(*(status_of(reader) for reader in readers))
    assert set(statuses) == {408}


async def test_endless_headers_are_cut_off_at_the_header_limit(
    server: GatewayServer, held: list[asyncio.StreamWriter]
) -> None:
    async def stream_one_header() -> int:
        reader, writer = await connect(server)
        held.append(writer)
        writer.write(HALF_SENT + b"X-Endless: ")
        try:
            for _ in range(1000):  # up to 4 MB, far past the 16 KiB limit
                writer.write(b"a" * 4096)
                await writer.drain()
        except ConnectionError:
            pass  # the server closed the connection: what we want
        return await status_of(reader)

    streams = [asyncio.create_task(stream_one_header()) for _ in range(20)]
    assert await healthz(server) == 200
    assert set(await asyncio.gather(*streams)) == {431}


async def test_a_large_header_sent_at_once_is_431(server: GatewayServer) -> None:
    reader, writer = await connect(server)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
    await writer.drain()
    assert await status_of(reader) == 431
    writer.close()


async def test_a_body_that_stops_arriving_is_cut_off(server: GatewayServer) -> None:
    reader, writer = await connect(server)
    writer.write(HALF_SENT + b"Content-Length: 1000\r\n\r\n{\"prompt\": ")
    await writer.drain()
    assert await status_of(reader) == 408
    writer.close()


async def test_connections_past_the_cap_are_answered_503_and_closed(gateway: StartGateway,
                                                                   held: list[asyncio.StreamWriter]) -> None:
    server = gateway(server={"max_connections": 20, "header_timeout_s": 30.0})
    for _ in range(20):
        held.append((await connect(server))[1])
    reader, writer = await connect(server)
    assert await status_of(reader) == 503
    writer.close()
    for writer in held:
        writer.close()
    held.clear()
    await asyncio.sleep(0.2)  # the server sees the closes
    assert await healthz(server) == 200


async def test_a_keep_alive_connection_gets_the_same_deadline_for_its_next_request(server: GatewayServer) -> None:
    reader, writer = await connect(server)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
    await writer.drain()
    assert b" 200 " in await asyncio.wait_for(reader.readline(), 10)
    await asyncio.wait_for(reader.readuntil(b'{"status":"ok"}'), 10)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: ga")  # the next request, half-sent
    await writer.drain()
    assert await status_of(reader) == 408
    writer.close()


def test_an_image_bomb_upload_is_a_400_and_costs_no_memory(gateway: StartGateway) -> None:
    server = gateway()
    bomb = png_declaring(13_000, 13_000)

    with heap_peak() as peak:
        response = httpx.post(f"{server.base_url}/v1/images/edits", data={"prompt": "a cat"},
                              files={"image": ("bomb.png", bomb, "image/png")}, timeout=30)

    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "image_too_large"
    assert peak.mb < 50


LARGE_ANSWER = (b'{"model": "sdxl-lightning", "prompt": "a lighthouse", "size": "1024x1024", "n": 4, "seed": 7, '
                b'"steps": 4, "response_format": "b64_json", "output_format": "png"}')


async def ask_for_a_large_answer(server: GatewayServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int]:
    """A request for four realistic 1024x1024 images (about 9 MB of JSON) on a connection whose
    receive window is as small as the kernel allows: the reader, the writer, the answer's length."""
    host, port = server.base_url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 16)
    writer.write(b"POST /v1/images/generations HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(LARGE_ANSWER), LARGE_ANSWER))
    await writer.drain()
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)).decode().lower()
    assert " 200 " in head.splitlines()[0]
    length = int(head.split("content-length:")[1].split("\r\n")[0])
    assert length > 3_000_000
    return reader, writer, length


async def read_to_the_end(reader: asyncio.StreamReader, *, pause_s: float = 0.0) -> int:
    """The body bytes read until the server closed the connection."""
    received = 0
    with contextlib.suppress(ConnectionResetError):
        while chunk := await asyncio.wait_for(reader.read(1 << 16), 30):
            received += len(chunk)
            if pause_s:
                await asyncio.sleep(pause_s)
    return received


@pytest.fixture
def large_images(simulator: StartSimulator, gateway: StartGateway) -> GatewayServer:
    return gateway(route_to(simulator("callmissed", realistic_images=True)),
                   server={"send_timeout_s": 1.0, "keep_alive_s": 1.0})


async def test_a_client_that_stops_reading_its_answer_is_cut_off(large_images: GatewayServer) -> None:
    reader, writer, length = await ask_for_a_large_answer(large_images)
    await asyncio.sleep(3.0)  # reads nothing for three send timeouts (and past the keep-alive)
    received = await read_to_the_end(reader)
    writer.close()
    assert received < length  # what the kernel held arrived, the rest was dropped with the connection


async def test_a_client_reading_slowly_but_steadily_gets_its_whole_answer(large_images: GatewayServer) -> None:
    reader, writer, length = await ask_for_a_large_answer(large_images)
    received = await read_to_the_end(reader, pause_s=0.03)  # 2 MB/s, 64 KiB at a time: past three send timeouts
    writer.close()
    assert received == length
