"""The request and response of the OpenAI-compatible vendors (CallMissed, aigateway)."""

from __future__ import annotations

from typing import Any

from backends.vendors.messages import HttpAnswer, HttpCall, VendorOutput, require
from core.errors import VendorProtocolError
from core.request import ImageRequest


def build_generation(request: ImageRequest, *, model: str, response_format: str) -> HttpCall:
    body: dict[str, Any] = {
        "model": model,
        "prompt": request.prompt,
        "n": request.n,
        "size": request.size,
        "response_format": response_format,
        "seed": request.seed,
        "steps": request.steps,
        "guidance_scale": request.guidance_scale,
    }
    if request.negative_prompt:
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
    error = body["error"] if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = error.get("code") or error.get("type")
        return (str(code) if code else None), str(error.get("message", ""))
    return None, str(body)[:300]
