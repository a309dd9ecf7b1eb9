"""Images kept as files (``image_store = "directory"``, and ``--workers`` on the embedded store) are
downloaded straight from the file, over real HTTP on the gateway's own server: ``sendfile(2)``
from the file to the socket, so an image is never read into the process, whatever its size and
however slowly its client reads; the connection's guards (send timeout) hold as for any answer.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import StartGateway, StartSimulator, route_to
from tests.e2e.gateway_server import GatewayServer
from tests.memory_peak import MB, heap_peak

IMAGE_BYTES = 16 * MB
SMALL_WINDOW = 64 * 1024
"""The receive buffer of a client that reads slowly: the server's socket fills long before the
image is sent."""


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    return tmp_path / "images"


@pytest.fixture
def server(gateway: StartGateway, image_dir: Path) -> GatewayServer:
    return gateway(image_store="directory", image_dir=image_dir, server={"send_timeout_s": 1.0})


def put_image(image_dir: Path, size: int = IMAGE_BYTES) -> tuple[str, bytes]:
    """A PNG-headed file of ``size`` bytes, named as the store names its images."""
    data = b"\x89PNG\r\n\x1a\n" + os.urandom(size - 8)
    name = f"{os.urandom(12).hex()}.png"
    image_dir.mkdir(parents=True, exist_ok=True)
    (image_dir / name).write_bytes(data)
    return name, data


@pytest.fixture
def connection(server: GatewayServer) -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_WINDOW)
    sock.settimeout(20)
    sock.connect(("127.0.0.1", int(server.url.rsplit(":", 1)[1])))
    yield sock
    sock.close()


def ask(sock: socket.socket, path: str, method: str = "GET") -> None:
    sock.sendall(f"{method} {path} HTTP/1.1\r\nhost: gateway\r\n\r\n".encode())


def read_answer(sock: socket.socket, into: bytearray, *, piece: int = 1024 * 1024,
                pause_s: float = 0.0) -> tuple[dict[str, str], memoryview]:
    """The head's fields and the body bytes that arrived before the answer was whole or the
    connection ended, as a view of ``into`` (allocated by the caller: nothing is per read)."""
    view, got, head_end = memoryview(into), 0, -1
    fields: dict[str, str] = {}
    while True:
        if head_end < 0 and (head_end := into.find(b"\r\n\r\n", 0, got)) >= 0:
            lines = into[:head_end].decode("latin-1").split("\r\n")
            fields = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines[1:])}
            fields["status"] = lines[0].split(" ")[1]
        if head_end >= 0 and got - head_end - 4 >= int(fields.get("content-length", "0")):
            break
        try:
            count = sock.recv_into(view[got:got + piece])
        except ConnectionResetError:
            count = 0
        if count == 0:
            break
        got += count
        if pause_s:
            time.sleep(pause_s)
    return fields, view[head_end + 4:got] if head_end >= 0 else view[:0]


def read_to_the_end(sock: socket.socket) -> int:
    """How many bytes arrive until the server ends the connection (a hang is the socket's timeout)."""
    into = memoryview(bytearray(1024 * 1024))
    total = 0
    while True:
        try:
            count = sock.recv_into(into)
        except ConnectionResetError:
            return total
        if count == 0:
            return total
        total += count


def test_an_image_file_is_sent_whole_without_passing_through_the_process(
        server: GatewayServer, image_dir: Path, connection: socket.socket) -> None:
    name, data = put_image(image_dir)
    into = bytearray(IMAGE_BYTES + 4096)

    with heap_peak() as peak:  # the server runs in this process: its heap is measured too
        ask(connection, f"/v1/images/files/{name}")
        fields, body = read_answer(connection, into)

    assert fields["status"] == "200" and fields["content-type"] == "image/png"
    assert int(fields["content-length"]) == len(body) == IMAGE_BYTES
    assert body == data
    assert peak.mb < 2, f"the download grew the heap by {peak.mb:.1f} MB (the image is {IMAGE_BYTES // MB} MB)"


def test_a_slow_reader_gets_every_byte_and_its_connection_serves_the_next_request(
        server: GatewayServer, image_dir: Path, connection: socket.socket) -> None:
    name, data = put_image(image_dir, 4 * MB)
    into = bytearray(4 * MB + 4096)

    ask(connection, f"/v1/images/files/{name}")
    fields, body = read_answer(connection, into, piece=256 * 1024, pause_s=0.01)
    assert fields["status"] == "200" and body == data

    ask(connection, "/healthz")  # kept alive, and nothing of the image left in its way
    fields, _ = read_answer(connection, bytearray(64 * 1024))
    assert fields["status"] == "200"


def test_a_client_that_stops_reading_a_download_is_cut_off(
        server: GatewayServer, image_dir: Path, connection: socket.socket) -> None:
    name, _ = put_image(image_dir)
    ask(connection, f"/v1/images/files/{name}")
    first = len(connection.recv(1024))  # the answer has begun; then the client reads nothing for three send timeouts

    time.sleep(3.0)

    assert first + read_to_the_end(connection) < IMAGE_BYTES  # the connection ended before the image did


def test_a_file_cut_short_during_its_download_ends_the_connection_and_not_the_server(
        server: GatewayServer, image_dir: Path, connection: socket.socket) -> None:
    name, _ = put_image(image_dir)
    ask(connection, f"/v1/images/files/{name}")
    first = len(connection.recv(1024))
    os.truncate(image_dir / name, MB)  # after it was opened, while most of it is still to send

    assert first + read_to_the_end(connection) < IMAGE_BYTES  # ended early, not left hanging

    with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), timeout=10) as again:
        ask(again, "/healthz")
        fields, _ = read_answer(again, bytearray(64 * 1024))
    assert fields["status"] == "200"


def test_downloads_leave_no_file_open(server: GatewayServer, image_dir: Path) -> None:
    name, data = put_image(image_dir, MB)
    port = int(server.url.rsplit(":", 1)[1])
    into = bytearray(MB + 4096)

    def download() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            ask(sock, f"/v1/images/files/{name}")
            fields, body = read_answer(sock, into)
            assert fields["status"] == "200" and body == data

    download()
    open_before = len(os.listdir("/proc/self/fd"))
    for _ in range(30):
        download()

    assert len(os.listdir("/proc/self/fd")) < open_before + 10  # not one more per download


def read_head(sock: socket.socket) -> dict[str, str]:
    """The fields of an answer to ``HEAD`` (which has none of the body its content-length counts),
    read to the end of its head and not a byte further."""
    got = b""
    while not got.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        assert byte, f"the connection ended within the head: {got!r}"
        got += byte
    lines = got[:-4].decode("latin-1").split("\r\n")
    fields = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines[1:])}
    return {**fields, "status": lines[0].split(" ")[1]}


SAME_HEAD = ("status", "content-type", "content-length", "cache-control")


def test_a_head_answers_what_a_download_would_without_the_image_and_leaves_no_file_open(
        server: GatewayServer, image_dir: Path, connection: socket.socket) -> None:
    name, data = put_image(image_dir, MB)
    ask(connection, f"/v1/images/files/{name}")
    download, body = read_answer(connection, bytearray(MB + 4096))
    assert download["status"] == "200" and body == data

    open_before = len(os.listdir("/proc/self/fd"))
    for _ in range(30):
        ask(connection, f"/v1/images/files/{name}", "HEAD")
        head = read_head(connection)
        assert {field: head[field] for field in SAME_HEAD} == {field: download[field] for field in SAME_HEAD}

    ask(connection, "/healthz")  # the same connection: no byte of the image was sent after any head
    fields, _ = read_answer(connection, bytearray(64 * 1024))
    assert fields["status"] == "200"
    assert int(head["content-length"]) == MB
    assert len(os.listdir("/proc/self/fd")) < open_before + 10  # each file closed, as after a download


def test_a_head_of_an_image_that_is_not_there_is_a_404_like_its_download(
        server: GatewayServer, connection: socket.socket) -> None:
    missing = f"/v1/images/files/{'a' * 24}.png"
    ask(connection, missing)
    download, _ = read_answer(connection, bytearray(64 * 1024))

    ask(connection, missing, "HEAD")
    head = read_head(connection)

    assert head["status"] == download["status"] == "404"
    assert head["content-type"] == download["content-type"] == "application/json"
    ask(connection, "/healthz")  # no error body after the head either
    assert read_answer(connection, bytearray(64 * 1024))[0]["status"] == "200"


def test_a_head_of_an_image_kept_in_the_state_store_gives_its_length(
        gateway: StartGateway, simulator: StartSimulator) -> None:
    server = gateway(route_to(simulator("callmissed")))  # images in the state store (memory): bytes, not files
    made = httpx.post(f"{server.url}/v1/images/generations", json={"prompt": "a fox", "response_format": "url"},
                      timeout=30)
    url = made.json()["data"][0]["url"]

    download = httpx.get(url, timeout=10)
    head = httpx.head(url, timeout=10)

    assert head.status_code == download.status_code == 200 and head.content == b""
    assert {field: head.headers[field] for field in SAME_HEAD[1:]} == \
        {field: download.headers[field] for field in SAME_HEAD[1:]}
    assert int(head.headers["content-length"]) == len(download.content)
