"""``POST /v1/images/generations`` served without Litestar's per-request machinery.

The gateway's hottest request did little of its own (``proxy.api.images.generation``) inside a
lot of Litestar: the router, two layers of exception handling, dependency injection, the
response objects and their header structures took about a tenth of the gateway's CPU per
request (py-spy attached to the gateway under ``bench/overhead.py``'s load). This plain ASGI
layer sits just inside the request-id middleware (``proxy.api.telemetry``), recognises exactly
that method and path, and serves it with the functions the Litestar route calls: ``generation``
(the key, the body, the routing choice, ``Gateway.generate`` or the stream) and
``error_answer`` (every error's envelope).

Everything else goes to Litestar as before: other paths and methods (405 with ``Allow``,
``OPTIONS``, a trailing slash), a ``Host`` header Litestar refuses, a ``root_path``, an app
served without its lifespan (no gateway built). The Litestar route stays registered: it
documents the endpoint in the OpenAPI document and serves it when this layer steps aside.

What Litestar did around the handler, this layer does alike:

- the body is read by Litestar's own ``Request``, with the route's handler in the scope, so
  ``max_body_bytes`` (413) and a client leaving mid-body are Litestar's own checks;
- a JSON answer carries the served headers (names lower-cased), then ``content-type`` and
  ``content-length``, as ``ASGIResponse`` writes them;
- a stream is turned into its ASGI response by the route handler itself (``to_response``);
- an exception before the answer starts is ``error_answer``'s envelope; after, it is raised as
  Litestar raises it.

``lean_generations`` returns the Litestar app unchanged when the app or the route has anything
this layer does not reproduce (CORS, guards, middleware, hooks, response headers or cookies).

A large JSON answer is written in pieces (``images_body_parts``): the vendor's base64 is handed
to uvicorn as the view it is, which uvloop writes to the socket without a copy. (ASGI names the
body ``bytes``; uvicorn takes any buffer, and the gateway is served by uvicorn only.) Where the
server offers it (``boltgate serve``: ``proxy.serving.one_write``), the head and every piece go
out in one system call rather than one each; elsewhere (a test client) as ordinary messages.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

from litestar import Litestar, Request, Response
from litestar._asgi.utils import is_valid_host
from litestar.exceptions import LitestarException
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, HTTPResponseBodyEvent, Message, Receive, Scope, Send

from proxy.api.errors import ERROR_MEDIA_TYPE, EXCEPTION_HANDLERS, error_answer
from proxy.api.images import IMAGES_MEDIA_TYPE, create_image, generation
from proxy.gateway import Gateway, ImagesResponse
from proxy.images.body import images_body_parts
from proxy.serving.one_write import EXTENSION as ONE_WRITE
from proxy.serving.one_write import PARTS

PATH = "/v1/images/generations"
JOIN_BELOW = 64 * 1024
"""A JSON answer shorter than this goes out as one joined piece: each piece is a write to the
socket, and copying a few kilobytes costs less than a write."""


class GatewaySource(Protocol):
    """Where the gateway is found: ``GatewayPlugin``, which builds it in the app's lifespan."""

    @property
    def gateway(self) -> Gateway | None: ...


def lean_generations(app: Litestar, source: GatewaySource) -> ASGIApp:
    """``app.asgi_handler`` with ``POST /v1/images/generations`` served by this layer (or
    unchanged, where Litestar would do more than this layer reproduces)."""
    litestar = app.asgi_handler
    handler = generations_handler(app)
    if handler is None or not litestar_adds_nothing(app, handler):
        return litestar
    request_class = handler.resolve_request_class()

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["path"] != PATH or scope.get("method") != "POST" or scope.get("root_path")
                or not _host_accepted(scope) or (gateway := source.gateway) is None):
            await litestar(scope, receive, send)
            return
        scope["route_handler"] = handler  # the body cap: the route's request_max_body_size
        request: Request[Any, Any, Any] = request_class(scope, receive, send)
        whole = ONE_WRITE in (scope.get("extensions") or {})
        started = False

        async def noting_start(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            answered = await generation(request, gateway)
            if isinstance(answered, Response):
                asgi = await handler.to_response(app=app, data=answered, request=request)
                await asgi(scope, receive, noting_start)
            else:
                parts, headers = _images_answer(answered)  # before the start: a failure here is a 500
                started = True
                await _send(send, 200, headers, parts, one_write=whole)
        except Exception as exc:
            if started:  # as Litestar's ExceptionHandlerMiddleware: the answer is half sent
                raise LitestarException("Exception caught after response started") from exc
            answer = error_answer(request, exc)
            await _send(send, answer.status, _headers(answer.headers, ERROR_MEDIA_TYPE, len(answer.body)),
                        [answer.body], one_write=whole)

    return dispatch


def generations_handler(app: Litestar) -> HTTPRouteHandler | None:
    """The route handler that serves ``POST /v1/images/generations`` (None if it is not ours)."""
    for route in app.routes:
        if isinstance(route, HTTPRoute) and route.path == PATH and "POST" in route.route_handler_map:
            handler, _ = route.route_handler_map["POST"]
            return handler if handler.fn is create_image else None
    return None


def litestar_adds_nothing(app: Litestar, handler: HTTPRouteHandler) -> bool:
    """Whether Litestar would do nothing around ``handler`` that this layer leaves out."""
    layers = handler.ownership_layers
    return (
        app.cors_config is None and not app.allowed_hosts and not app.after_exception
        and not handler.resolve_guards() and not handler.resolve_middleware()
        and handler.resolve_before_request() is None and handler.resolve_after_response() is None
        and not any(getattr(layer, "after_request", None) for layer in layers)
        and not handler.resolve_response_headers() and not handler.resolve_response_cookies()
        and not handler.cache and handler.resolve_exception_handlers() == EXCEPTION_HANDLERS
    )


def _host_accepted(scope: Scope) -> bool:
    """Litestar's router check: a malformed ``Host`` is refused (400) before any route runs."""
    for name, value in scope["headers"]:
        if name == b"host":
            return is_valid_host(value)
    return True


def _images_answer(served: ImagesResponse) -> tuple[list[bytes | memoryview], list[tuple[bytes, bytes]]]:
    """The JSON answer's pieces (joined when small) and its headers."""
    parts = images_body_parts(served.body)
    length = sum(len(part) for part in parts)
    if length < JOIN_BELOW and len(parts) > 1:
        parts = [b"".join(parts)]
    return parts, _headers(served.headers, IMAGES_MEDIA_TYPE, length)


def _headers(headers: dict[str, str], media_type: str, length: int) -> list[tuple[bytes, bytes]]:
    """As Litestar's ``ASGIResponse`` encodes them: each name lower-cased, then the content type
    and length unless already given."""
    encoded = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    given = {name for name, _ in encoded}
    if b"content-type" not in given:
        encoded.append((b"content-type", media_type.encode("latin-1")))
    if b"content-length" not in given:
        encoded.append((b"content-length", str(length).encode("latin-1")))
    return encoded


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], parts: list[bytes | memoryview], *,
                one_write: bool = False) -> None:
    if one_write:  # the head and every part in one system call (proxy.serving.one_write)
        await send(cast(Message, {"type": "http.response.start", "status": status, "headers": headers, PARTS: parts}))
        return
    await send({"type": "http.response.start", "status": status, "headers": headers})
    last = len(parts) - 1
    for index, part in enumerate(parts):
        message: HTTPResponseBodyEvent = {"type": "http.response.body", "body": cast(bytes, part),  # a view: see above
                                          "more_body": index < last}
        await send(message)
