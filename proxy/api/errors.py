"""The one place where errors become HTTP: OpenAI's ``{"error": {...}}`` body, never a bare 500.

Every ``BoltgateError`` carries its status, type, code and param; Litestar's own exceptions
(unknown path, wrong method, body too large, its validation) are translated to the same shape;
anything unexpected is logged and answered as a 500 ``server_error`` in the same envelope.

``error_answer`` is the mapping, as status, headers and body: Litestar's exception handlers
(``EXCEPTION_HANDLERS``) wrap it in a ``Response``, and the lean generations path
(``proxy.api.lean_generations``) sends it as it is, so both answer every error alike.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
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

ERROR_MEDIA_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class ErrorAnswer:
    """An error as HTTP: its status, its own headers (content type and length aside) and its body."""

    status: int
    headers: dict[str, str]
    body: bytes


def error_answer(request: Request[Any, Any, Any], exc: Exception) -> ErrorAnswer:
    """What ``exc`` raised while serving ``request`` answers, with its code named in the request's
    access line; an unexpected exception is logged with its traceback."""
    error = _as_boltgate_error(request, exc)
    if (record := record_of(request.scope)) is not None:
        record.error = error.code or error.error_type
    return envelope(error)


def envelope(error: BoltgateError) -> ErrorAnswer:
    """The envelope; a 503 or 429 always says when to come back (a client's SDK otherwise
    retries on its own schedule)."""
    headers = error.headers
    if error.status_code in (429, 503) and not any(name.lower() == "retry-after" for name in headers):
        headers = {**headers, **retry_after_headers(DEFAULT_RETRY_AFTER_S)}
    return ErrorAnswer(error.status_code, headers, orjson.dumps(error.body()))


def _as_boltgate_error(request: Request[Any, Any, Any], exc: Exception) -> BoltgateError:
    """The error tree's member that says what went wrong: ``exc`` itself, a translated Litestar
    exception, or the 500 that hides an unexpected one (in the order Litestar looks up handlers)."""
    if isinstance(exc, BoltgateError):
        if exc.status_code >= 500:
            log.warning("%s: %s", exc.code, exc.message)
        return exc
    if isinstance(exc, HTTPException):
        return _translated(exc)
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return BoltgateError("The gateway failed unexpectedly; the error was logged")


def _translated(exc: HTTPException) -> BoltgateError:
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
    return translated


def _invalid_parameter(exc: ValidationException) -> InvalidRequest:
    """Litestar's own validation (path parameters), naming the parameter as our errors do."""
    problems = exc.extra if isinstance(exc.extra, list) else []
    first = problems[0] if problems and isinstance(problems[0], dict) else {}
    name = first.get("key")
    if not isinstance(name, str):
        return InvalidRequest(f"Invalid request: {exc.detail}")
    return InvalidRequest(f"Invalid '{name}': {first.get('message', 'not accepted')}", param=name)


def error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """Litestar's exception handler: ``error_answer`` as a ``Response``."""
    answer = error_answer(request, exc)
    return Response(content=answer.body, status_code=answer.status, media_type=ERROR_MEDIA_TYPE,
                    headers=answer.headers)


EXCEPTION_HANDLERS = {
    BoltgateError: error_response,
    HTTPException: error_response,
    Exception: error_response,
}
