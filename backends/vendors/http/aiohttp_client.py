"""A pooled aiohttp session as the vendor ``HttpClient`` (``http_client = "aiohttp"``; lean is the default)."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
import yarl
from aiohttp import hdrs
from aiohttp.connector import SocketFactoryType

from backends.vendors.http.base import (
    DEFAULT_HEADERS,
    MAX_ANSWER_BYTES,
    MAX_CONNECTIONS,
    MAX_REDIRECTS,
    broke_off,
    checker,
    fold_headers,
    read_capped,
    refuse_declared,
    refuse_unsendable,
    refused_address,
    refused_url,
    timed_out,
    unreachable,
)
from backends.vendors.http.redirects import CheckedRequests
from backends.vendors.messages import HttpAnswer
from backends.vendors.name_resolver import NameResolver
from backends.vendors.url_policy import CheckedResolver, OutboundPolicy

_REFUSED_URLS = (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError)


class AiohttpClient(CheckedRequests):
    """Created on first use: an aiohttp session must belong to the running loop.

    With a ``policy``, names are looked up once through ``names`` (the system's resolver by
    default) and checked by ``CheckedResolver``: only allowed addresses are connected to.
    ``socket_factory`` (aiohttp's own hook) makes the socket for each address connected to."""

    def __init__(self, *, max_connections: int = MAX_CONNECTIONS, max_answer_bytes: int = MAX_ANSWER_BYTES,
                 max_redirects: int = MAX_REDIRECTS, policy: OutboundPolicy | None = None,
                 names: NameResolver | None = None, socket_factory: SocketFactoryType | None = None) -> None:
        self._max_connections = max_connections
        self._max_answer_bytes = max_answer_bytes
        self._max_redirects = max_redirects
        self._policy = policy
        self._names = names
        self._socket_factory = socket_factory
        self._check = checker(policy)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            resolver = CheckedResolver(self._policy, self._names) if self._policy is not None else None
            connector = aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300, resolver=resolver,
                                             socket_factory=self._socket_factory)
            self._session = aiohttp.ClientSession(connector=connector, headers=DEFAULT_HEADERS,
                                                  cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=True,
                                                  trust_env=False)
        return self._session

    async def _exchange(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                        timeout: float, limit: int) -> HttpAnswer:
        refuse_unsendable(url, headers)
        try:
            async with self._open().request(
                # encoded=True: the URL goes out byte for byte (a re-quoted signed URL no longer verifies)
                method, yarl.URL(url, encoded=True), data=body, headers=headers, allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                content = await self._read(response, url, limit)
                return HttpAnswer(response.status, fold_headers(response.headers.items()), content)
        except aiohttp.ConnectionTimeoutError as exc:  # its connect phase ran out: nothing was sent
            raise unreachable(url, exc) from exc
        except TimeoutError as exc:
            raise timed_out(url, timeout, exc) from exc
        except _REFUSED_URLS as exc:
            raise refused_url(url, exc) from exc
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, PermissionError):  # CheckedResolver's refusal
                raise refused_address(url) from exc
            raise unreachable(url, exc) from exc
        except aiohttp.ClientError as exc:
            raise broke_off(url, exc) from exc

    @staticmethod
    async def _read(response: aiohttp.ClientResponse, url: str, limit: int) -> bytes:
        """The body within the cap; a sized, unencoded one as it arrived (the common case, the fastest).

        An encoded body streams through ``read_capped`` in decompressed pieces, so the cap counts
        what decompression makes, not what arrives."""
        size = response.content_length
        refuse_declared(size, url, limit)
        if size is not None and hdrs.CONTENT_ENCODING not in response.headers:
            return await _read_sized(response.content)
        return await read_capped(response.content.iter_any(), url, limit)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


async def _read_sized(content: aiohttp.StreamReader) -> bytes:
    """The pieces of a body whose size was declared (and checked), joined once.

    ``ClientResponse.read()`` joins the pieces buffered at each wake-up and then joins those: two
    copies of a 2 MB image, each a fresh allocation the size of the image. Here each piece is
    taken as it was received and they are joined at the end; a body that came in one piece (a
    small image) is not copied at all.

    The end is ``at_eof()``, not what ``readchunk`` returns: a body-less answer (HEAD, 204) reads
    from aiohttp's one shared empty stream, which answers "end of an HTTP chunk" forever once
    any answer has read it."""
    pieces: list[bytes] = []
    while not content.at_eof():
        piece, _ = await content.readchunk()
        if piece:
            pieces.append(piece)
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)
