"""The httpx ``HttpClient``: for teams that standardise on httpx, and the adapters' test seam.

It drives an httpx transport directly (the seam respx and ``MockTransport`` replace), not
``httpx.AsyncClient``, whose extras differ from aiohttp's: it applies its timeout to each phase
(connect, each read...), so a body trickled a byte at a time never times out; it parses a
redirect's ``Location`` even when not following it, so a malformed one fails a call that should
simply answer 302; it keeps cookies. Here the one total budget is an ``asyncio.timeout`` around
the exchange, redirects are ``redirects.py``'s, and no cookie is kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx

from backends.vendors.http.base import (
    DEFAULT_HEADERS,
    MAX_ANSWER_BYTES,
    MAX_CONNECTIONS,
    broke_off,
    check_call,
    fold_headers,
    read_capped,
    refused_url,
    timed_out,
    unreachable,
)
from backends.vendors.http.redirects import exchange_following
from backends.vendors.messages import HttpAnswer

KEPT_IDLE_CONNECTIONS = 20


class HttpxClient:
    """Pooled; ``transport`` swaps the network only (respx, MockTransport).

    Idle connections kept stay at httpx's default (20): httpcore's pool walks every pooled
    connection on each request, and at 32 in flight keeping them all cost a third more CPU per
    request than reconnecting the surplus (measured on loopback).
    """

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None, *, max_connections: int = MAX_CONNECTIONS,
                 max_answer_bytes: int = MAX_ANSWER_BYTES) -> None:
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=KEPT_IDLE_CONNECTIONS)
        self._transport = transport or httpx.AsyncHTTPTransport(limits=limits)
        self._max_answer_bytes = max_answer_bytes

    async def request(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                      timeout: float, *, follow_redirects: bool = False) -> HttpAnswer:
        if follow_redirects:
            return await exchange_following(self._exchange, method, url, headers, body, timeout)
        check_call(url, timeout)
        return await self._exchange(method, url, headers, body, timeout)

    async def _exchange(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                        timeout: float) -> HttpAnswer:
        try:
            async with asyncio.timeout(timeout):
                sent_headers = httpx.Headers(DEFAULT_HEADERS)
                sent_headers.update(headers)
                request = httpx.Request(method, url, content=body, headers=sent_headers)
                response = await self._transport.handle_async_request(request)
                try:
                    content = await read_capped(response.aiter_bytes(), url, self._max_answer_bytes)
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise timed_out(url, timeout, exc) from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise refused_url(url, exc) from exc
        except httpx.ConnectError as exc:
            raise unreachable(url, exc) from exc
        except (httpx.TransportError, httpx.DecodingError) as exc:
            raise broke_off(url, exc) from exc
        return HttpAnswer(response.status_code, fold_headers(response.headers.multi_items()), content)

    async def aclose(self) -> None:
        await self._transport.aclose()
