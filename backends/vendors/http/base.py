"""The contract every HTTP client keeps, and the pieces both implementations share.

``request(method, url, headers, body, timeout, follow_redirects=...)`` is one exchange:

- ``timeout`` is one total budget for connecting, sending, waiting and reading the whole body
  (a body trickled slowly still runs out of it); a budget already spent raises before connecting.
- Any status is an answer (the status ladder in ``classify.py`` reads it), with the headers as a
  dict of lowercase names (repeated fields joined by ", ") and the body decoded (gzip, deflate).
- Redirects are answered as they are, unless ``follow_redirects`` (output URLs): then at most
  ``MAX_REDIRECTS`` hops, to http(s) URLs only, followed in one place (``redirects.py``).
- Failures become the gateway's typed errors here, and nowhere else; messages name the host,
  never the path or query (signed output URLs carry credentials)::

      no time left, or the budget ran out             VendorTimeout
      refused, unresolvable, unreachable              VendorUnavailable
      reset, truncated, not HTTP, broken encoding     VendorUnavailable
      not a well-formed http(s) URL (redirects
        included), too many hops, a body past the cap VendorProtocolError

No cookie is kept between calls. A cancelled call raises ``CancelledError`` and closes its
connection, like any other task.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Literal, Protocol
from urllib.parse import urlsplit

from backends.vendors.messages import HttpAnswer
from core.errors import VendorProtocolError, VendorTimeout, VendorUnavailable

HttpClientKind = Literal["aiohttp", "httpx"]

MAX_CONNECTIONS = 1000
"""Per route and region: enough for thousands of requests in flight on one pod."""
MAX_REDIRECTS = 5
"""Hops an output-URL fetch follows (CDNs redirect once or twice); API calls follow none."""
MAX_ANSWER_BYTES = 64 * 1024 * 1024
"""The largest body accepted: ten SDXL images as base64 JSON are about 20 MB."""
DEFAULT_HEADERS = {"user-agent": "boltgate", "accept": "*/*", "accept-encoding": "gzip, deflate"}
"""Sent by both clients alike (a call's own headers win), so that a vendor cannot tell them apart."""


class HttpClient(Protocol):
    async def request(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                      timeout: float, *, follow_redirects: bool = False) -> HttpAnswer:
        """One HTTP exchange, bounded by ``timeout`` seconds in all."""
        ...

    async def aclose(self) -> None: ...


def host_of(url: str) -> str:
    return url.split("/", 3)[2] if url.count("/") >= 2 else "?"


def check_call(url: str, timeout: float) -> None:
    """Refuse, before any I/O, a URL that is not a well-formed http(s) URL and a budget already spent."""
    if not _well_formed(url):
        raise VendorProtocolError(f"not a well-formed http(s) URL: {url.split(':', 1)[0][:20]!r}...")
    if timeout <= 0:
        raise VendorTimeout(f"no time left to call {host_of(url)}")


@functools.lru_cache(maxsize=4096)
def _well_formed(url: str) -> bool:
    """Cached: a route calls the same few URLs over and over (parsing one costs microseconds)."""
    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:
        return False


def fold_headers(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lowercase names; a repeated field's values joined by ", " (RFC 9110, section 5.3)."""
    folded: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        folded[key] = f"{folded[key]}, {value}" if key in folded else value
    return folded


async def read_capped(chunks: AsyncIterator[bytes], url: str, limit: int) -> bytes:
    """The whole body, or a protocol error as soon as it passes ``limit`` bytes."""
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise VendorProtocolError(f"{host_of(url)} answered more than {limit} bytes")
        parts.append(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def timed_out(url: str, timeout: float, exc: BaseException) -> VendorTimeout:
    return VendorTimeout(f"no complete answer within {timeout:.2f}s from {host_of(url)} ({type(exc).__name__})")


def unreachable(url: str, exc: BaseException) -> VendorUnavailable:
    return VendorUnavailable(f"{host_of(url)} unreachable ({type(exc).__name__})")


def broke_off(url: str, exc: BaseException) -> VendorUnavailable:
    return VendorUnavailable(f"the exchange with {host_of(url)} broke off ({type(exc).__name__})")


def refused_url(url: str, exc: BaseException) -> VendorProtocolError:
    return VendorProtocolError(f"a URL on {host_of(url)} that we cannot call ({type(exc).__name__})")
