"""The OpenAPI document, generated from the models that validate requests and shape answers.

Request bodies come from the constrained pydantic models that the handlers validate with
(``proxy.api.openai_request``), so every bound the document states is one the gateway enforces;
answers come from ``proxy.api.schemas``. Each handler names its documentation with
``operation_class=documented(...)``: the success answer, every error status it can give (all in
OpenAI's error envelope), and the headers it reads and sends.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from litestar.openapi.spec import (
    Link,
    OpenAPIFormat,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    RequestBody,
    Schema,
    SecurityRequirement,
)
from pydantic import BaseModel

from proxy.api.schemas import ErrorBody

ERROR_DESCRIPTIONS = {
    400: "Invalid request: the field at fault is named in error.param",
    401: "Missing or wrong API key",
    402: "The key's budget or the request's price ceiling cannot cover it",
    403: "Not allowed (the admin API is off, the admin token is wrong, or the key may not ask for this "
         "routing_policy, route or hedging)",
    404: "Not found (an unknown model, an expired image, an unknown key)",
    409: "The Idempotency-Key is in use, or was used for another request",
    413: "The request body is larger than this gateway accepts",
    429: "Too many requests (the key's rate limits, or every vendor tried): come back after Retry-After",
    500: "The gateway failed unexpectedly (logged)",
    503: "No route could serve the request now: every attempt is listed; Retry-After says when to retry",
}


def _schema_fields() -> dict[str, dataclasses.Field[Any]]:
    """Litestar's ``Schema`` fields by their JSON Schema keyword (``minLength`` -> ``min_length``)."""
    return {field.metadata.get("alias", field.name): field for field in dataclasses.fields(Schema)}


_KEYWORDS = _schema_fields()
_NESTED_ONE = {"not", "if", "then", "else", "items", "contains", "propertyNames", "contentSchema"}
_NESTED_LIST = {"allOf", "anyOf", "oneOf", "prefixItems"}
_NESTED_MAP = {"properties", "patternProperties", "dependentSchemas"}


def to_openapi(node: Mapping[str, Any], definitions: Mapping[str, Any] | None = None) -> Schema:
    """A JSON Schema (as pydantic writes it, with ``$defs``) as Litestar's ``Schema``, refs inlined."""
    definitions = {**(definitions or {}), **node.get("$defs", {})}
    if "$ref" in node:
        return to_openapi(definitions[node["$ref"].rsplit("/", 1)[-1]], definitions)
    values: dict[str, Any] = {}
    for keyword, value in node.items():
        if keyword == "$defs":
            continue
        field = _KEYWORDS.get(keyword)
        if field is None:  # a model whose constraint pydantic could not write as JSON Schema
            raise ValueError(f"{keyword!r} is not a JSON Schema keyword (in {node})")
        if keyword in _NESTED_ONE:
            value = to_openapi(value, definitions)
        elif keyword in _NESTED_LIST:
            value = [to_openapi(item, definitions) for item in value]
        elif keyword in _NESTED_MAP:
            value = {name: to_openapi(item, definitions) for name, item in value.items()}
        elif keyword == "additionalProperties" and isinstance(value, dict):
            value = to_openapi(value, definitions)
        elif keyword == "type":
            value = [OpenAPIType(kind) for kind in value] if isinstance(value, list) else OpenAPIType(value)
        elif keyword == "format":
            value = OpenAPIFormat(value)
        values[field.name] = value
    return Schema(**values)


@cache
def model_schema(model: type[BaseModel]) -> Schema:
    return to_openapi(model.model_json_schema())


def json_content(model: type[BaseModel]) -> dict[str, OpenAPIMediaType]:
    return {"application/json": OpenAPIMediaType(schema=model_schema(model))}


def header(description: str, *, pattern: str | None = None, required: bool = False) -> OpenAPIHeader:
    return OpenAPIHeader(schema=Schema(type=OpenAPIType.STRING, pattern=pattern), description=description,
                         required=required)


REQUEST_ID = {"x-request-id": header("The client's x-request-id, echoed, or a new one", required=True)}


@dataclass(frozen=True)
class Answer:
    """One documented answer: its content (a model, or media types with their schemas) and headers."""

    content: type[BaseModel] | dict[str, OpenAPIMediaType] | None
    description: str
    headers: Mapping[str, OpenAPIHeader] = dataclasses.field(default_factory=dict)
    links: Mapping[str, Link] = dataclasses.field(default_factory=dict)
    """Operations that take a value of this answer (a created resource's id) as a parameter."""

    def response(self) -> OpenAPIResponse:
        content = json_content(self.content) if isinstance(self.content, type) else self.content
        return OpenAPIResponse(description=self.description, content=content,
                               headers={**REQUEST_ID, **self.headers}, links=dict(self.links) or None)


RETRY_AFTER = {
    "retry-after": header("Whole seconds to wait before retrying", pattern=r"^[0-9]+$", required=True),
    "retry-after-ms": header("The same wait in milliseconds (OpenAI's SDKs read it first)", pattern=r"^[0-9]+$",
                             required=True),
}
"""What every 429 and 503 carries (``proxy.api.errors.error_response`` sees to it)."""

_COUNT = r"^[0-9]+$"
RATE_LIMIT_HEADERS = {
    "x-ratelimit-limit-requests": header("The key's requests per minute", pattern=_COUNT),
    "x-ratelimit-remaining-requests": header("Requests it has left this minute", pattern=_COUNT),
    "x-ratelimit-reset-requests": header("Seconds until its request count starts again", pattern=_COUNT),
    "x-ratelimit-limit-images": header("The key's images per minute", pattern=_COUNT),
    "x-ratelimit-remaining-images": header("Images it has left this minute", pattern=_COUNT),
    "x-ratelimit-reset-images": header("Seconds until its image count starts again", pattern=_COUNT),
    "x-ratelimit-limit-concurrent": header("The key's concurrent requests", pattern=_COUNT),
    "x-ratelimit-remaining-concurrent": header("More requests it may have in flight now", pattern=_COUNT),
    "x-ratelimit-limit": header("The tightest of the key's limits", pattern=_COUNT),
    "x-ratelimit-remaining": header("What is left of it", pattern=_COUNT),
    "x-ratelimit-reset": header("Seconds until it starts again", pattern=_COUNT),
}
"""Sent only where the key has rate limits (``proxy.rate_limits``): on every answer it gets, and
on the 429 that refuses it."""


def error_answer(status: int) -> Answer:
    headers: dict[str, OpenAPIHeader] = {}
    if status in (429, 503):
        headers.update(RETRY_AFTER)
    if status == 429:
        headers.update(RATE_LIMIT_HEADERS)
    if status == 409:
        headers["x-should-retry"] = header("false when retrying the same request cannot help",
                                           pattern="^(true|false)$")
    return Answer(ErrorBody, ERROR_DESCRIPTIONS[status], headers)


def documented(ok: Answer, *, status: int = 200, errors: Sequence[int] = (500,),
               body: RequestBody | None = None, parameters: Sequence[Parameter] = (),
               others: Mapping[int, Answer] | None = None,
               security: Sequence[SecurityRequirement] | None = None) -> type[Operation]:
    """An ``Operation`` class (what Litestar's ``operation_class`` takes) that documents the body,
    the success answer, every error status and the extra header parameters of one handler, and
    who may call it (``proxy.api.security``; None: the document's default, a client key)."""

    @dataclass
    class _Documented(Operation):
        def __post_init__(self) -> None:
            if security is not None:
                self.security = list(security)
            if body is not None:
                self.request_body = body
            self.parameters = [*(self.parameters or []), *parameters]
            answers = {status: ok, **{code: error_answer(code) for code in errors}, **(others or {})}
            self.responses = {str(code): answer.response() for code, answer in sorted(answers.items())}

    return _Documented
