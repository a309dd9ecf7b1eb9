"""What CallMissed and aigateway.sh share: OpenAI's Images API request and error envelope.

They differ only in data (model name, accepted ``response_format``, error codes), which each
passes in; reading the request and shaping ``{"error": {"code", "message", "type"}}`` live here.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from backends.simulators.asgi import SimResponse, json_response
from backends.simulators.fields import FieldReader, InvalidField
from backends.simulators.outputs import Generation, inline_images, publish
from backends.simulators.protocol import Call, SimError

ErrorTable = Mapping[int, tuple[str, str, str]]
"""HTTP status -> (code, type, default message)."""
OPENAI_FIELDS = frozenset({"model", "prompt", "n", "size", "response_format"})


def error_envelope(table: ErrorTable, error: SimError) -> dict[str, Any]:
    fallback = (
        ("server_error", "server_error", "The server had an error")
        if error.status >= 500
        else ("invalid_request_error", "invalid_request_error", "The request was rejected")
    )
    code, kind, message = table.get(error.status, fallback)
    return {"error": {"code": error.code or code, "message": error.message or message, "type": kind}}


@dataclass(frozen=True, slots=True)
class ImagesEndpoint:
    """The accepted values of one vendor's ``POST /v1/images/generations``."""

    model: str
    response_formats: Collection[str]
    default_response_format: str
    extras: frozenset[str] = frozenset()
    """The fields the vendor documents beside OpenAI's (``negative_prompt``, ``seed``, ``steps``);
    any other field answers 400."""
    max_steps: int = 50
    min_side: int = 256
    max_side: int = 2048
    revised_prompt: bool = True
    """Whether each image entry carries ``revised_prompt: null`` (as CallMissed documents)."""

    def read(self, call: Call) -> tuple[Generation, str]:
        """The generation asked for and the response format, or a 400/404 ``SimError``."""
        try:
            fields = FieldReader(call.request.json())
            fields.only(OPENAI_FIELDS | self.extras)
            model = fields.text("model", required=True)
            if model != self.model:
                raise SimError(404, f"The model '{model}' does not exist", code="model_not_found")
            response_format = fields.choice(
                "response_format", self.response_formats, default=self.default_response_format
            )
            width, height = fields.size(low=self.min_side, high=self.max_side)
            fields.text("negative_prompt")
            generation = Generation(
                prompt=fields.prompt(),
                seed=fields.seed(),
                width=width,
                height=height,
                steps=fields.integer("steps", default=4, low=1, high=self.max_steps) if "steps" in self.extras else 4,
                n=fields.integer("n", default=1, low=1, high=4),
            )
        except InvalidField as exc:
            raise SimError(400, f"Invalid '{exc.name}': {exc.reason}", code="invalid_value") from None
        except ValueError:
            raise SimError(400, "We could not parse the JSON body of your request.", code="invalid_json") from None
        return generation, response_format

    async def answer(self, call: Call, generation: Generation, response_format: str) -> SimResponse:
        """``{"created", "data": [{"b64_json"|"url", "revised_prompt": null}]}``."""
        data: list[dict[str, Any]]
        if response_format == "url":
            data = [{"url": url} for url in publish(call, generation)]
        else:
            data = [{"b64_json": image.b64} for image in await inline_images(call, generation)]
        if self.revised_prompt:
            data = [{**entry, "revised_prompt": None} for entry in data]
        return json_response({"created": int(time.time()), "data": data})
