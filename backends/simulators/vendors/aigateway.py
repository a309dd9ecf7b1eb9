"""aigateway.sh: OpenAI-compatible, ``url`` (default) or ``b64_json``.

URL answers point at images this simulator serves itself under ``/_sim/files/``, expiring after
``url_ttl_s``. Besides the documented fields it takes OpenAI-style extras ``seed``,
``negative_prompt`` and ``steps`` (1-20, Workers AI's limit), as the upstream model does.
"""

from __future__ import annotations

from backends.simulators.asgi import SimResponse, json_response
from backends.simulators.faults import REQUEST_KINDS
from backends.simulators.protocol import OUTPUT_FAULTS_OF_SYNC, Call, SimulatedVendor, route
from backends.simulators.vendors.openai_like import ErrorTable, ImagesEndpoint, error_envelope

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
    max_steps=20,
)


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
    auth="bearer",
    routes=(route("POST", "/v1/images/generations", generate, creates_output=True),
            route("GET", "/v1/balance", balance)),
    error_body=lambda error: error_envelope(ERRORS, error),
    error_headers={429: {"Retry-After": "1"}},
    fault_kinds=REQUEST_KINDS | OUTPUT_FAULTS_OF_SYNC | {"output_404"},
)
