"""The default ``HttpClient``: a pooled aiohttp session (the fastest measured, see the package)."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
import yarl
from aiohttp import hdrs

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

_REFUSED_URLS = (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError)


class AiohttpClient:
    """Created on first use: an aiohttp session must belong to the running loop."""

    def __init__(self, *, max_connections: int = MAX_CONNECTIONS, max_answer_bytes: int = MAX_ANSWER_BYTES) -> None:
        self._max_connections = max_connections
        self._max_answer_bytes = max_answer_bytes
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, headers=DEFAULT_HEADERS,
                                                  cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=True,
                                                  trust_env=False)
        return self._session

    async def request(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                      timeout: float, *, follow_redirects: bool = False) -> HttpAnswer:
        if follow_redirects:
            return await exchange_following(self._exchange, method, url, headers, body, timeout)
        check_call(url, timeout)
        return await self._exchange(method, url, headers, body, timeout)

    async def _exchange(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                        timeout: float) -> HttpAnswer:
        try:
            async with self._open().request(
                # encoded=True: the URL goes out byte for byte (a re-quoted signed URL no longer verifies)
                method, yarl.URL(url, encoded=True), data=body, headers=headers, allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                content = await self._read(response, url)
                return HttpAnswer(response.status, fold_headers(response.headers.items()), content)
        except TimeoutError as exc:
            raise timed_out(url, timeout, exc) from exc
        except _REFUSED_URLS as exc:
            raise refused_url(url, exc) from exc
        except aiohttp.ClientConnectorError as exc:
            raise unreachable(url, exc) from exc
        except aiohttp.ClientError as exc:
            raise broke_off(url, exc) from exc

    async def _read(self, response: aiohttp.ClientResponse, url: str) -> bytes:
        """The body within the cap; a sized, unencoded one in one read (the common case, the fastest)."""
        size = response.content_length
        if size is not None and size <= self._max_answer_bytes and hdrs.CONTENT_ENCODING not in response.headers:
            return await response.read()
        return await read_capped(response.content.iter_any(), url, self._max_answer_bytes)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
