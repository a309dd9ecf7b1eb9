"""imageapi.org: ``POST /api/v1/generate``, one image per call, answer shape set by config.

Its model page documents the request (``prompt``, ``model``, ``width``, ``height``,
``num_inference_steps`` up to 50, ``negative_prompt``) and nothing of the answer, so the answer
shape is a setting (``SimulatorConfig.response_shape``) covering each form an adapter must
accept. Assumed: errors are ``{"error": {"code", "message"}}``; a field the page does not list
answers 400; an ``nsfw`` fault answers a black image.
"""

from __future__ import annotations

from typing import Any

from backends.simulators.asgi import SimResponse, json_response
from backends.simulators.faults import REQUEST_KINDS
from backends.simulators.fields import FieldReader, InvalidField
from backends.simulators.outputs import Generation, inline_images, publish
from backends.simulators.protocol import OUTPUT_FAULTS_OF_SYNC, Call, SimError, SimulatedVendor, route

MODEL = "sdxl-lightning"
ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request", "Invalid request"),
    401: ("unauthorized", "Invalid or missing API key"),
    402: ("insufficient_credits", "Your plan has no credits left"),
    404: ("not_found", "Not found"),
    429: ("rate_limited", "Too many requests"),
    500: ("internal_error", "Generation failed"),
    503: ("service_unavailable", "Service temporarily unavailable"),
}


def error_body(error: SimError) -> dict[str, Any]:
    code, message = ERRORS.get(error.status, ("error", f"HTTP {error.status}"))
    return {"error": {"code": error.code or code, "message": error.message or message}}


def _read(call: Call) -> Generation:
    try:
        fields = FieldReader(call.request.json())
        fields.only(("prompt", "model", "width", "height", "num_inference_steps", "negative_prompt"))
        model = fields.text("model") or MODEL
        if model != MODEL:
            raise SimError(400, f"Unknown model '{model}'", code="invalid_model")
        fields.text("negative_prompt")
        return Generation(
            prompt=fields.prompt(),
            seed=fields.seed(),
            width=fields.integer("width", default=1024, low=256, high=2048),
            height=fields.integer("height", default=1024, low=256, high=2048),
            steps=fields.integer("num_inference_steps", default=4, low=1, high=50),
        )
    except InvalidField as exc:
        raise SimError(400, f"{exc.name} {exc.reason}") from None
    except ValueError:
        raise SimError(400, "Body must be JSON") from None


async def generate(call: Call) -> SimResponse:
    generation = _read(call)
    shape = call.config.response_shape
    body: dict[str, Any]
    if shape == "data_b64":
        body = {"data": [{"b64_json": image.b64} for image in await inline_images(call, generation)]}
    else:
        urls = publish(call, generation)
        if shape == "images":
            body = {"images": urls}
        elif shape == "image_url":
            body = {"image_url": urls[0]}
        else:
            body = {"data": [{"url": url} for url in urls]}
    return json_response(body)


SPEC = SimulatedVendor(
    name="imageapi",
    image_format="png",
    auth=("bearer",),
    routes=(route("POST", "/api/v1/generate", generate, creates_output=True),),
    error_body=error_body,
    fault_kinds=REQUEST_KINDS | OUTPUT_FAULTS_OF_SYNC | {"output_404"},
)
