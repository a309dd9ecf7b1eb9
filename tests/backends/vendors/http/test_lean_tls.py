"""The lean client over TLS: the same buffered reading through asyncio's and uvloop's TLS layers,
and a certificate it cannot verify refused before anything is sent.

A self-signed certificate for 127.0.0.1 is made with the ``openssl`` command for the session
(the tests are skipped where there is none).
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from backends.vendors.http import LeanClient
from core.errors import VendorUnreachable
from tests.backends.vendors.http.raw_server import RawConnection, answer
from tests.backends.vendors.http.scripted_server import pattern

BUDGET_S = 5.0
MIB = 1024 * 1024

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key


@pytest.fixture
async def tls_server(certificate: tuple[Path, Path]) -> AsyncIterator[tuple[str, list[int]]]:
    """An https server answering ``/n`` with ``n`` bytes of the pattern, keep-alive; the list
    counts its connections."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    connections: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        connection = RawConnection(len(connections), reader, writer, [])
        try:
            while (request := await connection.request()) is not None:
                size = int(request.split(b" ", 2)[1].strip(b"/"))
                await connection.send(answer(pattern(size)))
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    yield f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}", connections
    server.close()
    await server.wait_closed()


async def test_answers_over_tls_are_read_whole_on_one_connection(
    certificate: tuple[Path, Path], tls_server: tuple[str, list[int]]
) -> None:
    url, connections = tls_server
    client = LeanClient(tls=ssl.create_default_context(cafile=str(certificate[0])))
    try:
        for size in (2, 3 * MIB + 5, 70_000, 3 * MIB):
            assert (await client.request("GET", f"{url}/{size}", {}, None, BUDGET_S)).body == pattern(size)
    finally:
        await client.aclose()
    assert len(connections) == 1


async def test_a_certificate_the_client_cannot_verify_is_unreachable(tls_server: tuple[str, list[int]]) -> None:
    """Refused in the handshake, before the request is written: a create may be sent elsewhere."""
    url, _ = tls_server
    client = LeanClient()  # the system's trust store: a self-signed certificate is not in it
    try:
        with pytest.raises(VendorUnreachable, match="unreachable"):
            await client.request("GET", f"{url}/2", {}, None, BUDGET_S)
    finally:
        await client.aclose()
