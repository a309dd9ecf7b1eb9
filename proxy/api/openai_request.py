"""OpenAI's Images API request, as the SDK sends it, turned into the one ``ImageRequest``.

Extras that the SDK passes through ``extra_body`` (``negative_prompt``, ``seed``, ``steps``,
``guidance_scale``, ``max_price_usd``) are first-class fields here. Unknown fields are refused
with the field named, as OpenAI does, so a typo is not silently ignored.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import InvalidRequest
from core.request import ImageRequest, resolve_model

_SIZE = re.compile(r"^\s*(\d{1,5})\s*[xX]\s*(\d{1,5})\s*$")
_CLIENT_NAME = {"width": "size", "height": "size", "init_image": "image"}


class OpenAIImageBody(BaseModel):
    """The fields of ``POST /v1/images/generations`` (and the form of ``/v1/images/edits``)."""

    model_config = ConfigDict(extra="forbid")

    prompt: str
    model: str | None = None
    n: int = 1
    size: str | None = None
    response_format: Literal["url", "b64_json"] | None = None
    output_format: Literal["png", "jpeg", "webp"] | None = None
    user: str | None = None
    quality: str | None = None
    style: str | None = None
    background: str | None = None
    moderation: str | None = None
    output_compression: int | None = Field(default=None, ge=0, le=100)
    negative_prompt: str | None = None
    seed: int | None = None
    steps: int | None = None
    num_inference_steps: int | None = None
    guidance_scale: float | None = None
    strength: float | None = None
    max_price_usd: Decimal | None = None


def parse_size(size: str | None) -> tuple[int, int]:
    if size is None or size == "auto":
        return 1024, 1024
    match = _SIZE.match(size)
    if match is None:
        raise InvalidRequest(f"size must be 'WIDTHxHEIGHT' (e.g. 1024x1024) or 'auto', not {size!r}",
                             param="size")
    return int(match.group(1)), int(match.group(2))


def _first_error(error: ValidationError, renamed: dict[str, str] | None = None) -> InvalidRequest:
    first = error.errors(include_url=False)[0]
    loc = [str(part) for part in first["loc"]]
    names = {**_CLIENT_NAME, **(renamed or {})}
    field = names.get(loc[0], loc[0]) if loc else None
    message = first["msg"]
    if field == "size" and loc:
        message = f"{loc[0]} {message[0].lower()}{message[1:]} (from size)"
    return InvalidRequest(f"Invalid '{field}': {message}", param=field)


def to_image_request(raw: Any, *, init_image: bytes | None = None) -> ImageRequest:
    """Validate a decoded body and build the ``ImageRequest``; errors name the field."""
    if not isinstance(raw, dict):
        raise InvalidRequest("The request body must be a JSON object", param=None)
    try:
        body = OpenAIImageBody.model_validate(raw)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        if first["type"] == "extra_forbidden":
            name = str(first["loc"][0])
            raise InvalidRequest(f"Unrecognized request argument supplied: {name}", param=name,
                                 code="unknown_parameter") from error
        raise _first_error(error) from error
    width, height = parse_size(body.size)
    fields: dict[str, Any] = {
        "model": resolve_model(body.model),
        "prompt": body.prompt,
        "n": body.n,
        "width": width,
        "height": height,
        "negative_prompt": body.negative_prompt,
        "user": body.user,
        "init_image": init_image,
    }
    optional = {
        "seed": body.seed,
        "steps": body.steps if body.steps is not None else body.num_inference_steps,
        "guidance_scale": body.guidance_scale,
        "strength": body.strength,
        "response_format": body.response_format,
        "output_format": body.output_format,
        "max_price_usd": body.max_price_usd,
    }
    fields.update({name: value for name, value in optional.items() if value is not None})
    renamed = {"steps": "num_inference_steps"} if body.steps is None and body.num_inference_steps else None
    try:
        return ImageRequest.model_validate(fields)
    except ValidationError as error:
        raise _first_error(error, renamed) from error
