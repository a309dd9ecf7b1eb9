"""aigateway.sh: OpenAI-compatible, answers with a URL or base64.

Its documentation shows only OpenAI's fields (``model``, ``prompt``, ``n``, ``size``,
``response_format``): no seed, steps, negative prompt or guidance are sent, and a request that
asks for one of them explicitly is not routed here (the upstream picks its own, most likely
Cloudflare Workers AI's defaults of 20 steps and guidance 7.5).

Neither its model page, its OpenAPI document nor its SDK shows an idempotency key: a generation
whose answer was lost (a timeout, a reset, a 5xx) may have run and been billed, so it is not sent
again to the account; the router fails over.
"""

from __future__ import annotations

from backends.base import Capabilities
from backends.vendors.messages import HttpCall
from backends.vendors.openai_style import build_generation, openai_error_fields, parse_generation
from backends.vendors.spec import Behaviour, Options, VendorFacts, VendorSpec
from core.request import ImageRequest

MODEL_PAGE = "aigateway.sh/models/bytedance/stable-diffusion-xl-lightning"
OPENAPI = "aigateway-sh/openapi openapi.json"


def build_request(request: ImageRequest, options: Options) -> HttpCall:
    return build_generation(request, model=options["model"], response_format=options["response_format"])


BEHAVIOURS = (
    Behaviour("POST /v1/images/generations {model, prompt, n, size, response_format: url | b64_json}, "
              "Authorization: Bearer sk-aig-...", f"{MODEL_PAGE}: API schema > Request body"),
    Behaviour("answers {created, data: [{url} | {b64_json}]}", f"{MODEL_PAGE}: API schema > Response"),
    Behaviour("errors {error: {message, type, code (the HTTP status), param}}",
              f"{OPENAPI}: components.schemas.Error"),
    Behaviour("401 authentication_error, 402 insufficient_credits, 404 not_found, 429 rate_limit_error",
              f"{MODEL_PAGE}: Errors"),
    Behaviour("no seed, steps, negative_prompt or guidance field", f"{MODEL_PAGE}: API schema (none shown)"),
    Behaviour("no idempotency key: none in the images operation, nor in the SDK's client",
              f"{OPENAPI}: paths./v1/images/generations; aigateway-sh/sdk-python aigateway/client.py"),
    Behaviour("429 rate_limit_error carries Retry-After; 500 server_error and 503 service_unavailable are "
              "retryable", f"vendors.md > aigateway.sh > Errors (from {MODEL_PAGE}: Errors)"),
    Behaviour("a 5xx answering a generation may still have run and been billed (nothing says it was not)"),
    Behaviour("sides 256-1536 (Workers AI takes 256-2048; not published here)"),
    Behaviour("media.aigateway.sh URLs need no key"),
)

AIGATEWAY = VendorSpec(
    name="aigateway",
    capabilities=Capabilities(max_steps=50, max_n=4, min_side=256, max_side=1536, seed=False,
                              negative_prompt=False, guidance=False, steps=False),
    build_request=build_request,
    parse_output=parse_generation,
    error_fields=openai_error_fields,
    facts=VendorFacts(default_base_url="https://api.aigateway.sh", key_env="AIGATEWAY_API_KEY",
                      price_key="aigateway", demo_priority=10),
    default_options={"model": "bytedance/stable-diffusion-xl-lightning", "response_format": "b64_json"},
    behaviours=BEHAVIOURS,
)
