"""The one place where errors become HTTP: OpenAI's ``{"error": {...}}`` body, never a bare 500.

Every ``BoltgateError`` carries its status, type, code and param; Litestar's own exceptions
(unknown path, wrong method, body too large, its validation) are translated to the same shape;
anything unexpected is logged and answered as a 500 ``server_error`` in the same envelope.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_413_REQUEST_ENTITY_TOO_LARGE

from core.errors import (
    DEFAULT_RETRY_AFTER_S,
    BoltgateError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    retry_after_headers,
)
from proxy.api.access_log import record_of

log = logging.getLogger(__name__)


def error_response(error: BoltgateError) -> Response[bytes]:
    """The envelope; a 503 or 429 always says when to come back (a client's SDK otherwise
    retries on its own schedule)."""
    headers = error.headers
    if error.status_code in (429, 503) and not any(name.lower() == "retry-after" for name in headers):
        headers = {**headers, **retry_after_headers(DEFAULT_RETRY_AFTER_S)}
    return Response(
        content=orjson.dumps(error.body()),
        status_code=error.status_code,
        media_type="application/json",
        headers=headers,
    )


def on_boltgate_error(request: Request[Any, Any, Any], error: BoltgateError) -> Response[bytes]:
    if error.status_code >= 500:
        log.warning("%s: %s", error.code, error.message)
    return _noted(request, error_response(error), error)


def _noted(request: Request[Any, Any, Any], response: Response[bytes], error: BoltgateError) -> Response[bytes]:
    """Name the error's code in the request's access line."""
    if (record := record_of(request.scope)) is not None:
        record.error = error.code or error.error_type
    return response


def on_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    translated: BoltgateError
    if exc.status_code == HTTP_413_REQUEST_ENTITY_TOO_LARGE:
        translated = PayloadTooLarge("The request body is larger than this gateway accepts")
    elif isinstance(exc, ValidationException):
        translated = _invalid_parameter(exc)
    elif exc.status_code == 404:
        translated = NotFound(f"No such endpoint: {exc.detail}")
    else:
        translated = BoltgateError(str(exc.detail))
        translated.code = None  # not the class's "internal_error": e.g. a 405 is the client's mistake
        translated.status_code = exc.status_code
        translated.error_type = "invalid_request_error" if exc.status_code < 500 else "server_error"
    translated.headers.update(exc.headers or {})
    return _noted(request, error_response(translated), translated)


def _invalid_parameter(exc: ValidationException) -> InvalidRequest:
    """Litestar's own validation (path parameters), naming the parameter as our errors do."""
    problems = exc.extra if isinstance(exc.extra, list) else []
    first = problems[0] if problems and isinstance(problems[0], dict) else {}
    name = first.get("key")
    if not isinstance(name, str):
        return InvalidRequest(f"Invalid request: {exc.detail}")
    return InvalidRequest(f"Invalid '{name}': {first.get('message', 'not accepted')}", param=name)


def on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    error = BoltgateError("The gateway failed unexpectedly; the error was logged")
    return _noted(request, error_response(error), error)


EXCEPTION_HANDLERS = {
    BoltgateError: on_boltgate_error,
    HTTPException: on_http_exception,
    Exception: on_unexpected,
}
