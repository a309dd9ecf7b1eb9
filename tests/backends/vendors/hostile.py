"""A hostile vendor and an internal service, real HTTP servers on loopback.

The vendor speaks the OpenAI-style images API (as aigateway does) and answers with whatever output
URL the test sets; its ``/img/...`` paths serve the traps (redirects, floods, bombs, drips). The
internal service stands for a metadata endpoint or a cluster-internal API: it answers every
request with a valid PNG, so a gateway that reached it would happily deliver (and bill) its answer.
It records every request it gets.
"""

from __future__ import annotations

import asyncio
import functools
import io
import struct
import threading
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png(width: int = 16, height: int = 16) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int) -> bytes:
    """A small, well-formed PNG whose header declares ``width`` x ``height`` (grayscale): a bomb."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\0" * (width + 1) * 4, 9)
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", rows) + _chunk(b"IEND", b"")


def corrupt_png() -> bytes:
    """A PNG with one byte of its image data flipped: its chunk CRC no longer matches."""
    data = bytearray(png(64, 64))
    index = data.index(b"IDAT") + 10
    data[index] ^= 0xFF
    return bytes(data)


@functools.cache
def gzip_bomb(decompressed_mb: int) -> bytes:
    """``decompressed_mb`` MB of a PNG signature and zeros, gzip-compressed (about 1000:1).

    Made once per size: compressing 256 MB takes seconds, and every client and test gets the same bytes.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [compressor.compress(PNG_SIGNATURE)]
    zeros = b"\0" * (1024 * 1024)
    parts += [compressor.compress(zeros) for _ in range(decompressed_mb)]
    parts.append(compressor.flush())
    return b"".join(parts)


@dataclass
class Recorder:
    """What one server was asked: paths and the headers that came with them."""

    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    @property
    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]


class LoopbackServer:
    """An aiohttp web app on a free loopback port of the running loop."""

    def __init__(self, app: web.Application) -> None:
        self._runner = web.AppRunner(app, access_log=None)
        self.url = ""

    async def start(self) -> LoopbackServer:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    async def stop(self) -> None:
        await self._runner.cleanup()


def internal_service(recorder: Recorder) -> web.Application:
    async def anything(request: web.Request) -> web.Response:
        recorder.requests.append((request.path_qs, dict(request.headers)))
        return web.Response(body=png(), content_type="image/png")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", anything)
    return app


@dataclass
class HostileVendor:
    """The vendor's behaviour, set by each test: the URL it answers with."""

    output_url: str = ""
    output_b64: str | None = None
    recorder: Recorder = field(default_factory=Recorder)
    error_body: bytes | None = None
    drip_seconds: float = 0.5

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/images/generations", self._generate)
        app.router.add_get("/img/ok.png", self._ok)
        app.router.add_get("/img/redirect", self._redirect)
        app.router.add_get("/img/loop", self._loop)
        app.router.add_get("/img/flood", self._flood)
        app.router.add_get("/img/declared-flood", self._declared_flood)
        app.router.add_get("/img/gzip-bomb", self._gzip_bomb)
        app.router.add_get("/img/html", self._html)
        app.router.add_get("/img/drip", self._drip)
        app.router.add_get("/img/corrupt.png", self._corrupt)
        app.router.add_get("/img/bomb.png", self._bomb)
        return app

    async def _generate(self, request: web.Request) -> web.Response:
        self.recorder.requests.append((request.path_qs, dict(request.headers)))
        if self.error_body is not None:
            return web.Response(status=500, body=self.error_body, content_type="application/json")
        if self.output_b64 is not None:
            return web.json_response({"created": 1, "data": [{"b64_json": self.output_b64}]})
        return web.json_response({"created": 1, "data": [{"url": self.output_url}]})

    async def _ok(self, request: web.Request) -> web.Response:
        self.recorder.requests.append((request.path_qs, dict(request.headers)))
        return web.Response(body=png(), content_type="image/png")

    async def _redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    async def _loop(self, request: web.Request) -> web.Response:
        self.recorder.requests.append((request.path, dict(request.headers)))
        hop = int(request.query.get("hop", "0"))
        raise web.HTTPFound(f"/img/loop?hop={hop + 1}")

    async def _flood(self, request: web.Request) -> web.StreamResponse:
        """Chunked, no length announced: megabytes until the client stops reading."""
        response = web.StreamResponse(headers={"content-type": "image/png"})
        await response.prepare(request)
        await response.write(PNG_SIGNATURE)
        block = b"\0" * (1024 * 1024)
        for _ in range(int(request.query.get("mb", "256"))):
            await response.write(block)
        await response.write_eof()
        return response

    async def _declared_flood(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "image/png", "content-length": str(2**34)})
        await response.prepare(request)
        await response.write(PNG_SIGNATURE)
        return response

    async def _gzip_bomb(self, request: web.Request) -> web.Response:
        body = gzip_bomb(int(request.query.get("mb", "256")))
        return web.Response(body=body, headers={"content-type": "image/png", "content-encoding": "gzip"})

    async def _html(self, request: web.Request) -> web.Response:
        return web.Response(text="<html>sign in</html>", content_type="text/html")

    async def _drip(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "image/png"})
        await response.prepare(request)
        for byte in PNG_SIGNATURE * 100:
            await response.write(bytes([byte]))
            await asyncio.sleep(self.drip_seconds)
        return response

    async def _corrupt(self, request: web.Request) -> web.Response:
        return web.Response(body=corrupt_png(), content_type="image/png")

    async def _bomb(self, request: web.Request) -> web.Response:
        return web.Response(body=png_declaring(50_000, 50_000), content_type="image/png")


@dataclass
class HostileWorld:
    vendor: HostileVendor
    vendor_server: LoopbackServer
    internal: Recorder
    internal_server: LoopbackServer


async def start_world() -> HostileWorld:
    vendor = HostileVendor()
    internal = Recorder()
    vendor_server = await LoopbackServer(vendor.app()).start()
    internal_server = await LoopbackServer(internal_service(internal)).start()
    return HostileWorld(vendor, vendor_server, internal, internal_server)


async def stop_world(world: HostileWorld) -> None:
    await world.vendor_server.stop()
    await world.internal_server.stop()


async def world_fixture() -> AsyncIterator[HostileWorld]:
    world = await start_world()
    try:
        yield world
    finally:
        await stop_world(world)


class ThreadedWorld:
    """The hostile world on its own event loop in a daemon thread, for tests whose gateway runs
    in another thread (the end-to-end suite)."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="hostile-world", daemon=True)
        self.world: HostileWorld

    def __enter__(self) -> HostileWorld:
        self._thread.start()
        self.world = asyncio.run_coroutine_threadsafe(start_world(), self._loop).result(timeout=30)
        return self.world

    def __exit__(self, *exc_info: object) -> None:
        asyncio.run_coroutine_threadsafe(stop_world(self.world), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
