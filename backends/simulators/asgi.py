"""Plain-ASGI request and response plumbing, kept minimal so a simulator costs little CPU.

The simulators are plain ASGI rather than Litestar: they need a few fixed routes, no
validation framework, and two things a framework hides, answering nothing at all (``hang``)
and dropping the TCP connection mid-request (``reset``).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_NOT_PARSED = object()


@dataclass(slots=True)
class SimRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    query: dict[str, str] = field(default_factory=dict)
    """The query string's parameters (the last value of a repeated one)."""
    _json: Any = field(default=_NOT_PARSED, repr=False)

    def json(self) -> Any:
        """The body parsed as JSON; raises ``ValueError`` when it is not JSON."""
        if self._json is _NOT_PARSED:
            self._json = orjson.loads(self.body) if self.body else None
        return self._json

    def json_or_none(self) -> Any:
        try:
            return self.json()
        except ValueError:
            return None

    @property
    def base_url(self) -> str:
        """Where the client reached us, for absolute URLs in answers."""
        return f"http://{self.headers.get('host', 'localhost')}"


@dataclass(frozen=True, slots=True)
class SimResponse:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


def json_response(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> SimResponse:
    return SimResponse(status, orjson.dumps(payload), headers=headers or {})


async def read_request(scope: Scope, receive: Receive) -> SimRequest:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    return SimRequest(scope["method"], scope["path"], headers, b"".join(chunks), query)


async def send_response(send: Send, response: SimResponse) -> None:
    headers = [
        (b"content-type", response.content_type.encode()),
        (b"content-length", str(len(response.body)).encode()),
        *((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in response.headers.items()),
    ]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


async def wait_for_disconnect(receive: Receive, closing: asyncio.Event) -> bool:
    """Answer nothing until the client gives up (True) or the server stops (False)."""

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    client_gone = asyncio.ensure_future(disconnected())
    server_stops = asyncio.ensure_future(closing.wait())
    await asyncio.wait((client_gone, server_stops), return_when=asyncio.FIRST_COMPLETED)
    client_gone.cancel()
    server_stops.cancel()
    return client_gone.done() and not client_gone.cancelled()


async def reset_connection(receive: Receive) -> None:
    """Drop the TCP connection with a RST, no HTTP answer.

    ASGI has no message for this, so it reaches uvicorn's transport through the ``receive``
    callable (a bound method of uvicorn's request cycle, which holds the transport), then waits
    for uvicorn to notice the disconnect so it does not try to answer 500 on a dead socket.
    """
    transport: Any = getattr(getattr(receive, "__self__", None), "transport", None)
    if not hasattr(transport, "abort"):  # uvloop's transports are not asyncio.Transport subclasses
        raise RuntimeError("reset needs uvicorn's transport; is this running under uvicorn?")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, ValueError):  # ValueError: the peer already left
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    while (await receive())["type"] != "http.disconnect":
        pass
