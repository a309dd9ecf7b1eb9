"""The request and response of the OpenAI-compatible vendors (CallMissed, aigateway)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from backends.vendors.messages import HttpAnswer, HttpCall, VendorOutput, require
from core.errors import VendorProtocolError
from core.request import ImageRequest

EXTRAS = ("negative_prompt", "seed", "steps")
"""OpenAI-style extras some vendors document beside OpenAI's own fields."""


def build_generation(
    request: ImageRequest, *, model: str, response_format: str, extras: Collection[str] = ()
) -> HttpCall:
    """OpenAI's fields, plus exactly the ``extras`` the vendor documents."""
    body: dict[str, Any] = {
        "model": model,
        "prompt": request.prompt,
        "n": request.n,
        "size": request.size,
        "response_format": response_format,
    }
    if "seed" in extras:
        body["seed"] = request.seed
    if "steps" in extras:
        body["steps"] = request.steps
    if "negative_prompt" in extras and request.negative_prompt:
        body["negative_prompt"] = request.negative_prompt
    return HttpCall("POST", "/v1/images/generations", body)


def parse_generation(answer: HttpAnswer) -> VendorOutput:
    data = require(answer.json(), "data", list, "images response")
    output = VendorOutput()
    for item in data:
        if isinstance(item, dict) and isinstance(item.get("b64_json"), str):
            output.b64_images.append(item["b64_json"])
        elif isinstance(item, dict) and isinstance(item.get("url"), str):
            output.image_urls.append(item["url"])
        else:
            raise VendorProtocolError(f"image entry without b64_json or url: {str(item)[:200]}")
    return output


def openai_error_fields(body: Any) -> tuple[str | None, str]:
    """OpenAI's envelope; a string ``code`` names the error, else the ``type`` does (aigateway's
    ``code`` is the HTTP status as a number)."""
    error = body["error"] if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = error.get("code")
        if not isinstance(code, str) or not code:
            code = error.get("type")
        return (str(code) if code else None), str(error.get("message", ""))
    return None, str(body)[:300]
