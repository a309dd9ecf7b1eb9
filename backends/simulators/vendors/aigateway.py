"""aigateway.sh: OpenAI-compatible, ``url`` (default) or ``b64_json``.

URL answers point at images this simulator serves itself under ``/_sim/files/``, expiring after
``url_ttl_s``. It takes only the fields their model page documents (``model``, ``prompt``,
``n``, ``size``, ``response_format``); any other answers 400 (assumed: stricter than they may
be). Errors are their OpenAPI ``Error``: ``{"error": {"message", "type", "code", "param"}}``
with the HTTP status as ``code``.
"""

from __future__ import annotations

from typing import Any

from backends.simulators.asgi import SimResponse, json_response
from backends.simulators.faults import REQUEST_KINDS
from backends.simulators.protocol import OUTPUT_FAULTS_OF_SYNC, Call, SimError, SimulatedVendor, route
from backends.simulators.vendors.openai_like import ErrorTable, ImagesEndpoint

ERRORS: ErrorTable = {
    400: ("invalid_request_error", "invalid_request_error", "Invalid request"),
    401: ("authentication_error", "authentication_error", "Invalid API key"),
    402: ("insufficient_credits", "insufficient_credits", "Insufficient credits; top up to continue"),
    404: ("not_found", "not_found", "Not found"),
    429: ("rate_limit_error", "rate_limit_error", "Too many requests"),
    500: ("server_error", "server_error", "Internal server error"),
    503: ("service_unavailable", "service_unavailable", "The model is temporarily unavailable"),
}

ENDPOINT = ImagesEndpoint(
    model="bytedance/stable-diffusion-xl-lightning",
    response_formats=("url", "b64_json"),
    default_response_format="url",
    revised_prompt=False,
)


def error_body(error: SimError) -> dict[str, Any]:
    _, kind, message = ERRORS.get(error.status, ("", "server_error" if error.status >= 500 else
                                                 "invalid_request_error", f"HTTP {error.status}"))
    return {"error": {"message": error.message or message, "type": kind, "code": error.status, "param": None}}


async def generate(call: Call) -> SimResponse:
    generation, response_format = ENDPOINT.read(call)
    return await ENDPOINT.answer(call, generation, response_format)


async def balance(call: Call) -> SimResponse:
    """``GET /v1/balance`` ("Wallet balance", aigateway-sh/openapi): its body is not documented
    beyond 200 OK, so this one is **assumed**; clients read only the status."""
    return json_response({"balance_usd": "25.00"})


SPEC = SimulatedVendor(
    name="aigateway",
    image_format="png",
    auth=("bearer",),
    routes=(route("POST", "/v1/images/generations", generate, creates_output=True),
            route("GET", "/v1/balance", balance)),
    error_body=error_body,
    error_headers={429: {"Retry-After": "1"}},
    fault_kinds=REQUEST_KINDS | OUTPUT_FAULTS_OF_SYNC | {"output_404"},
)
