"""The httpx ``HttpClient``: for teams that standardise on httpx, and the adapters' test seam.

It drives an httpx transport directly (the seam respx and ``MockTransport`` replace), not
``httpx.AsyncClient``, whose extras differ from aiohttp's: it applies its timeout to each phase
(connect, each read...), so a body trickled a byte at a time never times out; it parses a
redirect's ``Location`` even when not following it, so a malformed one fails a call that should
simply answer 302; it keeps cookies; it inflates each network chunk whole (a 64 KB chunk of a
gzip bomb becomes 64 MB before any cap can look). Here the one total budget is an
``asyncio.timeout`` around the exchange, redirects are ``redirects.py``'s, no cookie is kept and
the body is decompressed by ``read_decoded``, bounded by the cap at every step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx

from backends.vendors.http.base import (
    DEFAULT_HEADERS,
    MAX_ANSWER_BYTES,
    MAX_CONNECTIONS,
    MAX_REDIRECTS,
    broke_off,
    checker,
    fold_headers,
    read_decoded,
    refuse_declared,
    refuse_unsendable,
    refused_address,
    refused_url,
    timed_out,
    unreachable,
)
from backends.vendors.http.checked_network import checked_transport
from backends.vendors.http.redirects import CheckedRequests
from backends.vendors.messages import HttpAnswer
from backends.vendors.name_resolver import NameResolver
from backends.vendors.url_policy import OutboundPolicy

KEPT_IDLE_CONNECTIONS = 20


class HttpxClient(CheckedRequests):
    """Pooled; ``transport`` swaps the network only (respx, MockTransport).

    Idle connections kept stay at httpx's default (20): httpcore's pool walks every pooled
    connection on each request, and at 32 in flight keeping them all cost a third more CPU per
    request than reconnecting the surplus (measured on loopback).
    """

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None, *, max_connections: int = MAX_CONNECTIONS,
                 max_answer_bytes: int = MAX_ANSWER_BYTES, max_redirects: int = MAX_REDIRECTS,
                 policy: OutboundPolicy | None = None, names: NameResolver | None = None) -> None:
        """With a ``policy`` (and no ``transport`` of the caller's), connections go through
        ``checked_network``: names are looked up once through ``names`` (the system's resolver by
        default) and only allowed addresses are connected to."""
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=KEPT_IDLE_CONNECTIONS)
        if transport is None:
            transport = (httpx.AsyncHTTPTransport(limits=limits) if policy is None
                         else checked_transport(limits, policy, names=names))
        self._transport = transport
        self._max_answer_bytes = max_answer_bytes
        self._max_redirects = max_redirects
        self._check = checker(policy)

    async def _exchange(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                        timeout: float, limit: int) -> HttpAnswer:
        refuse_unsendable(url, headers)
        try:
            async with asyncio.timeout(timeout):
                sent_headers = httpx.Headers(DEFAULT_HEADERS)
                sent_headers.update(headers)
                request = httpx.Request(method, url, content=body, headers=sent_headers)
                response = await self._transport.handle_async_request(request)
                try:
                    refuse_declared(response.headers.get("content-length"), url, limit)
                    content = await read_decoded(response.aiter_raw(), response.headers.get("content-encoding", ""),
                                                 url, limit)
                finally:
                    await response.aclose()
        except (httpx.ConnectTimeout, httpx.PoolTimeout) as exc:  # before a byte was sent
            raise unreachable(url, exc) from exc
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise timed_out(url, timeout, exc) from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise refused_url(url, exc) from exc
        except PermissionError as exc:  # checked_network's refusal
            raise refused_address(url) from exc
        except httpx.ConnectError as exc:
            raise unreachable(url, exc) from exc
        except (httpx.TransportError, httpx.DecodingError) as exc:
            raise broke_off(url, exc) from exc
        return HttpAnswer(response.status_code, fold_headers(response.headers.multi_items()), content)

    async def aclose(self) -> None:
        await self._transport.aclose()
