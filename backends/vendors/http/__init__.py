"""How bytes reach a vendor: one HTTP exchange (request in, status + headers + body out).

Three implementations of one interface (``base.HttpClient``), chosen by the ``http_client``
setting and held to one contract suite (``tests/backends/vendors/http/test_contract.py``):

- ``LeanClient`` (the default): HTTP/1.1 on asyncio's buffered protocol, a declared-length body
  read by the event loop straight into a buffer kept between answers. Against aiohttp, the
  gateway's CPU per request (``bench/overhead_ab.py``, medians of 10 alternating rounds on a
  shared 2-core VM) went from 2.66 to 2.48 ms for a small image at c=1 and 1.45 to 1.21 ms at
  c=32; for a 1.5 MB image from 9.21 to 5.06 ms at c=1 and 5.20 to 4.90 ms at c=32. With
  aiohttp, reading that image's 2 MB answer was over 30% of the request (a fresh 64 KB piece per
  read, a stream, a join; py-spy); a fresh 2 MB buffer per answer instead of a kept one page-faults
  for about 1 ms.
- ``AiohttpClient``: measured on loopback against a simulator (c=1, one core), a raw socket round
  trip took 160 us, aiohttp 263 us, httpx over aiohttp 395 us and httpx over httpcore 533 us;
  httpcore's pool also scans every pooled connection on each request, which at 32 connections
  cost more CPU than the rest of the gateway.
- ``HttpxClient``: for teams that standardise on httpx; it also takes any httpx transport, so
  the adapters' unit tests run it under respx or ``httpx.MockTransport``.
"""

from __future__ import annotations

from backends.vendors.http.aiohttp_client import AiohttpClient
from backends.vendors.http.base import MAX_ANSWER_BYTES, MAX_REDIRECTS, HttpClient, HttpClientKind
from backends.vendors.http.httpx_client import HttpxClient
from backends.vendors.http.lean_client import LeanClient
from backends.vendors.name_resolver import NameResolver
from backends.vendors.url_policy import OutboundPolicy

__all__ = ["AiohttpClient", "HttpClient", "HttpClientKind", "HttpxClient", "LeanClient", "make_http_client"]


def make_http_client(kind: HttpClientKind, *, policy: OutboundPolicy | None = None,
                     max_answer_bytes: int = MAX_ANSWER_BYTES, max_redirects: int = MAX_REDIRECTS,
                     names: NameResolver | None = None) -> HttpClient:
    """A new pooled client of ``kind``; each route region owns one and closes it. The wiring
    always passes the route's ``policy``; without one nothing but the URL's form is checked.
    ``names`` looks host names up (the system's resolver by default)."""
    if kind == "lean":
        return LeanClient(max_answer_bytes=max_answer_bytes, max_redirects=max_redirects, policy=policy, names=names)
    if kind == "aiohttp":
        return AiohttpClient(max_answer_bytes=max_answer_bytes, max_redirects=max_redirects, policy=policy,
                             names=names)
    return HttpxClient(max_answer_bytes=max_answer_bytes, max_redirects=max_redirects, policy=policy, names=names)
