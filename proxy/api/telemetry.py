"""An ASGI middleware: every response carries ``x-request-id``, every request gets its access
line (``proxy.api.access_log``); image endpoints are counted.

Plain ASGI rather than a framework middleware, because it sits on the hot path of every request.
"""

from __future__ import annotations

import secrets
import time

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from proxy.api.access_log import SCOPE_KEY, AccessRecord, write
from proxy.metrics import IN_FLIGHT, REQUEST_SECONDS, REQUESTS, labelled

_COUNTED = {"/v1/images/generations": "generations", "/v1/images/edits": "edits"}


def request_id_middleware(app: ASGIApp, *, log_prompts: bool = False) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        request_id = _client_request_id(scope) or secrets.token_hex(16)
        endpoint = _COUNTED.get(scope["path"])
        record = AccessRecord(scope["method"], scope["path"], request_id)
        scope[SCOPE_KEY] = record  # type: ignore[literal-required]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
                headers = list(message.get("headers", []))
                if endpoint is not None:
                    record.read_headers(headers)
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        if endpoint is None:
            try:
                await app(scope, receive, send_with_id)
            finally:
                write(record, log_prompts=log_prompts)
            return
        IN_FLIGHT.inc()
        try:
            await app(scope, receive, send_with_id)
        finally:
            IN_FLIGHT.dec()
            labelled(REQUESTS, endpoint, str(record.status)).inc()
            labelled(REQUEST_SECONDS, endpoint).observe(time.monotonic() - record.started)
            write(record, log_prompts=log_prompts)

    return middleware


def _client_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")[:128]
            return text if text.isprintable() else None
    return None
