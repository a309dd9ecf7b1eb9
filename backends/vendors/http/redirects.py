"""Redirects, followed in one place for every client: same hop limit, same checks, one budget.

Only output-URL fetches follow redirects (a CDN or a signed-URL service may send one or two);
every hop must pass the client's check (an http(s) URL the outbound policy allows), counts
against the client's ``max_redirects`` and spends the same budget. ``CheckedRequests`` is the
one ``request`` every client exposes on top of their own single exchange.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urljoin, urlsplit

from backends.vendors.http.base import body_limit, host_of
from backends.vendors.messages import HttpAnswer
from core.errors import VendorProtocolError

Exchange = Callable[[str, str, Mapping[str, str], bytes | None, float], Awaitable[HttpAnswer]]
"""One hop: method, URL, headers, body, seconds left."""
Check = Callable[[str, float], None]
"""Refuses a URL (and a spent budget) before any I/O: the client's own ``check``."""

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
KEEPS_METHOD = frozenset({307, 308})


async def exchange_following(exchange: Exchange, check: Check, method: str, url: str, headers: Mapping[str, str],
                             body: bytes | None, timeout: float, max_redirects: int) -> HttpAnswer:
    """``exchange`` hop after hop until an answer that is not a redirect, within one budget."""
    deadline = time.monotonic() + timeout
    check(url, timeout)
    answer = await exchange(method, url, headers, body, timeout)
    for _ in range(max_redirects):
        location = answer.headers.get("location")
        if answer.status not in REDIRECT_STATUSES or not location:
            return answer
        previous = url
        url = _resolve(previous, location)
        if answer.status not in KEEPS_METHOD:
            method, body = "GET", None
        if urlsplit(url).netloc != urlsplit(previous).netloc:
            headers = {}  # credentials are for the host they were meant for
        timeout = deadline - time.monotonic()
        check(url, timeout)
        answer = await exchange(method, url, headers, body, timeout)
    if answer.status in REDIRECT_STATUSES and answer.headers.get("location"):
        raise VendorProtocolError(f"{host_of(url)} redirected more than {max_redirects} times")
    return answer


class CheckedRequests:
    """``HttpClient.request`` for a client that supplies ``_exchange`` (one hop, read within
    ``limit``): the call's cap within the client's, the URL checked before any I/O, redirects
    followed only when asked."""

    _max_answer_bytes: int
    _max_redirects: int
    _check: Check

    async def _exchange(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                        timeout: float, limit: int) -> HttpAnswer:
        raise NotImplementedError

    async def request(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                      timeout: float, *, follow_redirects: bool = False,
                      max_bytes: int | None = None) -> HttpAnswer:
        limit = body_limit(self._max_answer_bytes, max_bytes)

        async def exchange(method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                           timeout: float) -> HttpAnswer:
            return await self._exchange(method, url, headers, body, timeout, limit)

        if follow_redirects:
            return await exchange_following(exchange, self._check, method, url, headers, body, timeout,
                                            self._max_redirects)
        self._check(url, timeout)
        return await exchange(method, url, headers, body, timeout)


def _resolve(base: str, location: str) -> str:
    try:
        return urljoin(base, location)
    except ValueError as exc:
        raise VendorProtocolError(f"{host_of(base)} redirected to a malformed URL") from exc
