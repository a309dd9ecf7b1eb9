"""CallMissed: OpenAI-compatible, ``b64_json`` only, honours ``Idempotency-Key``.

``POST /v1/images/generations`` with model ``sdxl-lightning``, extras ``negative_prompt``,
``seed``, ``steps`` (1-50), ``n`` 1-4, as their Image Generation page lists; any other field
answers 400 (assumed: stricter than they may be). As their Idempotency page says, a request
sent again with the same ``Idempotency-Key`` and the same body gets the first answer again (and
runs, and bills, once); with another body, 409. Only answered requests spend their key, so a
retry after a 5xx runs anew (assumed; so does a replay while the first is still running).
"""

from __future__ import annotations

from backends.simulators.asgi import SimResponse
from backends.simulators.protocol import Call, SimError, SimulatedVendor, route
from backends.simulators.vendors.openai_like import ErrorTable, ImagesEndpoint, error_envelope

ERRORS: ErrorTable = {
    400: ("invalid_request_error", "invalid_request_error", "Invalid request"),
    401: ("invalid_api_key", "invalid_request_error", "Incorrect API key provided"),
    402: ("insufficient_credits", "billing_error", "Your credit balance is too low"),
    403: ("permission_denied", "permission_error", "This key may not use this model"),
    404: ("not_found", "invalid_request_error", "Not found"),
    409: ("idempotency_key_reused", "invalid_request_error", "This Idempotency-Key was already used"),
    422: ("unprocessable_entity", "invalid_request_error", "The request could not be processed"),
    429: ("rate_limit_exceeded", "rate_limit_error", "Rate limit reached, retry later"),
    500: ("internal_error", "server_error", "The server had an error while processing your request"),
    501: ("not_implemented", "server_error", "Not implemented"),
    503: ("service_unavailable", "server_error", "The engine is currently overloaded"),
}

ENDPOINT = ImagesEndpoint(
    model="sdxl-lightning", response_formats=("b64_json",), default_response_format="b64_json",
    extras=frozenset({"negative_prompt", "seed", "steps"}), max_steps=50,
)


async def generate(call: Call) -> SimResponse:
    key = call.request.headers.get("idempotency-key")
    stored = call.state.idempotent_answers.get(key) if key is not None else None
    if stored is not None:
        body, response = stored
        if body != call.request.body:
            raise SimError(409)
        call.replayed = True
        return response
    generation, response_format = ENDPOINT.read(call)
    response = await ENDPOINT.answer(call, generation, response_format)
    if key is not None:
        call.state.idempotent_answers.put(key, (call.request.body, response), len(response.body))
    return response


SPEC = SimulatedVendor(
    name="callmissed",
    image_format="png",
    auth=("bearer",),
    routes=(route("POST", "/v1/images/generations", generate, creates_output=True),),
    error_body=lambda error: error_envelope(ERRORS, error),
    error_headers={429: {"Retry-After": "1", "X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0"}},
)
