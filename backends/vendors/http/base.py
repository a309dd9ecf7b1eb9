"""The contract every HTTP client keeps, and the pieces the implementations share.

``request(method, url, headers, body, timeout, follow_redirects=...)`` is one exchange:

- ``timeout`` is one total budget for connecting, sending, waiting and reading the whole body
  (a body trickled slowly still runs out of it); a budget already spent raises before connecting.
- Any status is an answer (the status ladder in ``classify.py`` reads it), with the headers as a
  dict of lowercase names (repeated fields joined by ", ") and the body decoded (gzip, deflate).
- Redirects are answered as they are, unless ``follow_redirects`` (output URLs): then at most
  ``max_redirects`` hops (``MAX_REDIRECTS`` by default), to http(s) URLs only, followed in one
  place (``redirects.py``).
- A body is read up to the client's ``max_answer_bytes``, or a call's smaller ``max_bytes``,
  counted after decompression while it streams: a flood or a gzip bomb stops at the cap.
- A client built with an ``OutboundPolicy`` (``backends.vendors.url_policy``) calls only what the
  policy allows: every URL and every redirect hop is checked (scheme, credentials, literal
  address), and a name is resolved by the client's own resolver, which keeps only allowed
  addresses, so the address checked is the address connected to (no DNS rebinding).
- Failures become the gateway's typed errors here, and nowhere else; messages name the host,
  never the path or query (signed output URLs carry credentials)::

      no time left, or the budget ran out             VendorTimeout
      refused, unresolvable, unreachable, a connect
        or a pooled connection that timed out          VendorUnreachable (a VendorUnavailable: nothing sent)
      reset, truncated, not HTTP, broken encoding     VendorUnavailable
      not a well-formed http(s) URL (redirects
        included), too many hops, a field that
        cannot be sent (a line break in it)           VendorProtocolError
      a body past the cap                             VendorBodyTooLarge (a VendorProtocolError)
      a URL or address the policy refuses             UnsafeVendorUrl

No cookie is kept between calls. A cancelled call raises ``CancelledError`` and closes its
connection, like any other task.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Literal, Protocol
from urllib.parse import urlsplit

from backends.vendors.messages import HttpAnswer
from backends.vendors.url_policy import OutboundPolicy
from core.errors import (
    UnsafeVendorUrl,
    VendorBodyTooLarge,
    VendorProtocolError,
    VendorTimeout,
    VendorUnavailable,
    VendorUnreachable,
)

HttpClientKind = Literal["lean", "aiohttp", "httpx"]

MAX_CONNECTIONS = 4096
"""Per route and region: every request a burst brings in flight gets its own vendor connection
(at 1,000, a burst of 2,000 requests ran in two waves of the vendor's latency)."""
MAX_REDIRECTS = 5
"""Hops an output-URL fetch follows (CDNs redirect once or twice); API calls follow none."""
MAX_ANSWER_BYTES = 64 * 1024 * 1024
"""The largest body accepted: ten SDXL images as base64 JSON are about 20 MB."""
DEFAULT_HEADERS = {"user-agent": "boltgate", "accept": "*/*", "accept-encoding": "gzip, deflate"}
"""Sent by every client alike (a call's own headers win), so that a vendor cannot tell them apart."""


class HttpClient(Protocol):
    async def request(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                      timeout: float, *, follow_redirects: bool = False,
                      max_bytes: int | None = None) -> HttpAnswer:
        """One HTTP exchange, bounded by ``timeout`` seconds in all and ``max_bytes`` of body."""
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


def checker(policy: OutboundPolicy | None) -> Callable[[str, float], None]:
    """``check_call``, then the outbound policy's check of the URL's form, when there is a policy."""
    if policy is None:
        return check_call
    # Cached like ``_well_formed``: the policy is frozen, so a URL it allowed once it always
    # allows (a refusal raises, and is not cached). Small: the hot URLs are a route's few
    # endpoints; one-off output URLs (signed, long) pass through.
    allowed = functools.lru_cache(maxsize=256)(policy.check)

    def check(url: str, timeout: float) -> None:
        check_call(url, timeout)
        allowed(url)

    return check


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
            raise VendorBodyTooLarge(f"{host_of(url)} answered more than {limit} bytes")
        parts.append(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def body_limit(client_cap: int, call_cap: int | None) -> int:
    """The cap for one call: the client's, or the call's own when it is smaller."""
    return client_cap if call_cap is None else min(client_cap, call_cap)


def refused_address(url: str) -> UnsafeVendorUrl:
    return UnsafeVendorUrl(f"{host_of(url)} resolves only to addresses the outbound policy refuses")


def refuse_declared(length: str | int | None, url: str, limit: int) -> None:
    """A body whose announced length is past the cap is refused before a byte of it is read (a
    compressed one too: decompressing never makes it smaller)."""
    size = int(length) if isinstance(length, int) or (length is not None and length.isdigit()) else None
    if size is not None and size > limit:
        raise VendorBodyTooLarge(f"{host_of(url)} announced {size} bytes, more than the {limit} we read")


async def read_decoded(chunks: AsyncIterator[bytes], encoding: str, url: str, limit: int) -> bytes:
    """The body as sent (``chunks`` undecoded), decompressed here for ``gzip`` and ``deflate``.

    Each step of decompression is bounded by the room left under ``limit``: a gzip bomb (1000:1)
    never makes more than the cap in memory, where a decoder that inflates a whole network chunk
    at once makes a thousand times that chunk first. A broken encoding is ``VendorUnavailable``."""
    coding = encoding.strip().lower()
    if coding in ("", "identity"):
        return await read_capped(chunks, url, limit)
    if coding not in ("gzip", "x-gzip", "deflate"):
        raise broke_off(url, ValueError(f"content-encoding {coding[:20]!r}, which we never asked for"))
    decompressor: zlib._Decompress | None = None
    parts: list[bytes] = []
    size = 0
    try:
        async for chunk in chunks:
            if decompressor is None:
                decompressor = zlib.decompressobj(_window_bits(coding, chunk))
            data = chunk
            while data:
                out = decompressor.decompress(data, limit - size + 1)
                size += len(out)
                if size > limit:
                    raise VendorBodyTooLarge(f"{host_of(url)} answered more than {limit} bytes (decompressed)")
                parts.append(out)
                data = decompressor.unconsumed_tail
        if decompressor is not None:
            tail = decompressor.flush()
            size += len(tail)
            if size > limit:
                raise VendorBodyTooLarge(f"{host_of(url)} answered more than {limit} bytes (decompressed)")
            parts.append(tail)
    except zlib.error as exc:
        raise broke_off(url, exc) from exc
    return b"".join(parts)


def _window_bits(coding: str, first: bytes) -> int:
    """gzip framing, or for ``deflate`` zlib framing (RFC 9110) or, as some servers send, raw deflate."""
    if coding != "deflate":
        return 16 + zlib.MAX_WBITS
    return zlib.MAX_WBITS if first[:1] and first[0] & 0x0F == 8 else -zlib.MAX_WBITS


def timed_out(url: str, timeout: float, exc: BaseException) -> VendorTimeout:
    return VendorTimeout(f"no complete answer within {timeout:.2f}s from {host_of(url)} ({type(exc).__name__})")


def unreachable(url: str, exc: BaseException) -> VendorUnreachable:
    """Only for failures before a byte of the request was sent: a create failing so is safe to resend."""
    return VendorUnreachable(f"{host_of(url)} unreachable ({type(exc).__name__})")


def broke_off(url: str, exc: BaseException) -> VendorUnavailable:
    return VendorUnavailable(f"the exchange with {host_of(url)} broke off ({type(exc).__name__})")


def refused_url(url: str, exc: BaseException) -> VendorProtocolError:
    return VendorProtocolError(f"a URL on {host_of(url)} that we cannot call ({type(exc).__name__})")


FIELD_BREAKS = ("\r", "\n", "\0")
"""What could end a request line or field early: a value carrying one could smuggle a field."""


def breaks_a_field(text: str) -> bool:
    return any(mark in text for mark in FIELD_BREAKS)


def refuse_unsendable(url: str, headers: Mapping[str, str]) -> None:
    """Check a call's own fields before a client that would raise its own error (aiohttp's
    ``ValueError``, httpx's ``LocalProtocolError``, neither mapped) is handed them. Values come
    from settings, so a key pasted with its newline is the route's fault, refused unsent."""
    for name, value in headers.items():
        if breaks_a_field(name) or breaks_a_field(value):
            raise unsendable(url, ValueError("a field carries a line break or a NUL"))
        try:
            name.encode("latin-1"), value.encode("latin-1")
        except UnicodeEncodeError as exc:
            raise unsendable(url, exc) from exc


def unsendable(url: str, exc: BaseException) -> VendorProtocolError:
    """A request that cannot be written as HTTP (a line break in a field): refused before sending."""
    return VendorProtocolError(f"a request to {host_of(url)} that we cannot send ({type(exc).__name__})")
