"""How bytes reach a vendor: one HTTP exchange (request in, status + headers + body out).

Two implementations of one small interface, the seam the adapters are tested through:

- ``AiohttpClient`` serves production. Measured on loopback against a simulator (c=1, one
  core): a raw socket round trip took 160 us, aiohttp 263 us, httpx over aiohttp 395 us and
  httpx over httpcore 533 us; httpcore's pool also scans every pooled connection on each
  request, which at 32 connections cost more CPU than the rest of the gateway.
- ``HttpxClient`` drives any httpx transport: unit tests pass ``httpx.AsyncHTTPTransport()``
  under respx, or ``httpx.MockTransport``.

Transport failures become the gateway's typed errors here, and nowhere else. A body larger than
``max_bytes`` (counted after decompression, while streaming) is cut off and refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Protocol

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver

from backends.vendors.messages import HttpAnswer
from core.errors import VendorBodyTooLarge, VendorTimeout, VendorUnavailable

MAX_CONNECTIONS = 1000
"""Per route and region: enough for thousands of requests in flight on one pod."""
_CHUNK = 64 * 1024


class HttpClient(Protocol):
    async def request(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                      timeout: float, *, follow_redirects: bool = False,
                      max_bytes: int | None = None) -> HttpAnswer:
        """One HTTP exchange, bounded by ``timeout`` seconds in all and ``max_bytes`` of body."""
        ...

    async def aclose(self) -> None: ...


class AiohttpClient:
    """A pooled aiohttp session, created on first use (it must belong to the running loop)."""

    def __init__(self, max_connections: int = MAX_CONNECTIONS, *, resolver: AbstractResolver | None = None) -> None:
        """``resolver`` decides which addresses a name may connect to (``url_policy.CheckedResolver``)."""
        self._max_connections = max_connections
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300,
                                             resolver=self._resolver)
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=True)
        return self._session

    async def request(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                      timeout: float, *, follow_redirects: bool = False,
                      max_bytes: int | None = None) -> HttpAnswer:
        try:
            async with self._open().request(
                method, url, data=body, headers=dict(headers), allow_redirects=follow_redirects,
                timeout=aiohttp.ClientTimeout(total=max(timeout, 0.001)),
            ) as response:
                if max_bytes is None:
                    content = await response.read()
                else:
                    _refuse_declared(response.content_length, max_bytes, url)
                    content = await _capped(response.content.iter_chunked(_CHUNK), max_bytes, url)
                return HttpAnswer(response.status, response.headers, content)
        except TimeoutError as exc:
            raise VendorTimeout(f"no answer within {timeout:.2f}s from {_host(url)}") from exc
        except aiohttp.ClientConnectorError as exc:
            raise VendorUnavailable(f"cannot connect to {_host(url)}: {exc.os_error}") from exc
        except aiohttp.ClientError as exc:
            raise VendorUnavailable(f"{_host(url)} failed: {type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class HttpxClient:
    """Any httpx transport behind the same interface (respx and MockTransport in tests)."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self._client = httpx.AsyncClient(transport=transport)

    async def request(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                      timeout: float, *, follow_redirects: bool = False,
                      max_bytes: int | None = None) -> HttpAnswer:
        try:
            async with self._client.stream(method, url, content=body, headers=headers, timeout=max(timeout, 0.001),
                                           follow_redirects=follow_redirects) as response:
                if max_bytes is None:
                    content = await response.aread()
                else:
                    _refuse_declared(_header_int(response.headers.get("content-length")), max_bytes, url)
                    content = await _capped(response.aiter_bytes(_CHUNK), max_bytes, url)
        except httpx.TimeoutException as exc:
            raise VendorTimeout(f"no answer within {timeout:.2f}s from {_host(url)} ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise VendorUnavailable(f"{_host(url)} unreachable: {type(exc).__name__}: {exc}") from exc
        return HttpAnswer(response.status_code, response.headers, content)

    async def aclose(self) -> None:
        await self._client.aclose()


def _refuse_declared(length: int | None, max_bytes: int, url: str) -> None:
    if length is not None and length > max_bytes:
        raise VendorBodyTooLarge(f"{_host(url)} announced {length} bytes; at most {max_bytes} are read")


async def _capped(chunks: AsyncIterator[bytes], max_bytes: int, url: str) -> bytes:
    """The (decompressed) body, abandoned as soon as it passes ``max_bytes``."""
    parts: list[bytes] = []
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > max_bytes:
            raise VendorBodyTooLarge(f"{_host(url)} sent more than {max_bytes} bytes")
        parts.append(chunk)
    return b"".join(parts)


def _header_int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def _host(url: str) -> str:
    return url.split("/", 3)[2] if url.count("/") >= 2 else url
