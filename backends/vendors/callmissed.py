"""CallMissed: OpenAI-compatible, answers only in base64; $0.04 per image.

It documents ``negative_prompt``, ``seed`` and ``steps`` (1-50) beside OpenAI's fields, and no
guidance: a request that sets ``guidance_scale`` is not sent here. It honours an
``Idempotency-Key`` on every POST: each create carries the request's key, so a create whose
answer was lost (a timeout, a reset, a 5xx) is sent again under it and runs, and bills, once.
"""

from __future__ import annotations

from backends.base import Capabilities
from backends.vendors.messages import HttpCall
from backends.vendors.openai_style import EXTRAS, build_generation, openai_error_fields, parse_generation
from backends.vendors.spec import Behaviour, Options, VendorFacts, VendorSpec
from core.request import ImageRequest

DOCS = "docs.callmissed.com"


def build_request(request: ImageRequest, options: Options) -> HttpCall:
    return build_generation(request, model=options["model"], response_format="b64_json", extras=EXTRAS)


BEHAVIOURS = (
    Behaviour("POST /v1/images/generations, Authorization: Bearer cm_...",
              f"{DOCS}: Image Generation > Overview, Basic Usage"),
    Behaviour("fields model, prompt (1-4000), n (1-4), size, response_format (b64_json only), "
              "negative_prompt, seed, steps (1-50)", f"{DOCS}: Image Generation > Parameters"),
    Behaviour("answers {created, data: [{b64_json, revised_prompt}]}", f"{DOCS}: Image Generation > Response"),
    Behaviour("errors {error: {code, message, type}}; 400 401 402 403 404 409 422 429 500 501 503",
              f"{DOCS}: Error Codes > Error Format, HTTP Status Codes"),
    Behaviour("429 carries Retry-After (seconds), X-RateLimit-Limit, X-RateLimit-Remaining",
              f"{DOCS}: Rate Limits & Quotas > Response Headers"),
    Behaviour("no guidance field", f"{DOCS}: Image Generation > Parameters (none listed)"),
    Behaviour("Idempotency-Key on any POST: a replay with the same key and body answers the original "
              "response and the action runs once; the same key with another body answers 409; keys are "
              "per tenant and kept for a limited window", f"{DOCS}: Idempotency > Using the Header, Behavior"),
    Behaviour("500 is 'safe to retry once'; 503 'upstream provider temporarily unavailable'",
              f"{DOCS}: Error Codes > HTTP Status Codes"),
    Behaviour("the key also covers /v1/images/generations (the page's example is another POST) and a "
              "replay while the first is still running waits or answers 409 (either way not run twice)"),
    Behaviour("$0.04 per image (₹4; 1 credit = ₹1 = $0.01), their ~35% markup included",
              "callmissed.com/en/models/sdxl-lightning: Pricing"),
    Behaviour("the model id is sdxl-lightning (the model page's slug; neither it nor the docs' Models table "
              "as stored prints the id; option model)"),
    Behaviour("sides 256-1536 (only examples such as 768x768 and 1024x1536 are published)"),
)

CALLMISSED = VendorSpec(
    name="callmissed",
    capabilities=Capabilities(max_steps=50, max_n=4, min_side=256, max_side=1536, guidance=False),
    build_request=build_request,
    parse_output=parse_generation,
    error_fields=openai_error_fields,
    facts=VendorFacts(default_base_url="https://api.callmissed.com", key_env="CALLMISSED_API_KEY",
                      price_key="callmissed", demo_priority=50),
    default_options={"model": "sdxl-lightning"},
    idempotency_header="Idempotency-Key",
    behaviours=BEHAVIOURS,
)
