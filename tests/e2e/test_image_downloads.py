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

import pytest

from tests.e2e.conftest import StartGateway
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


def ask(sock: socket.socket, path: str) -> None:
    sock.sendall(f"GET {path} HTTP/1.1\r\nhost: gateway\r\n\r\n".encode())


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
