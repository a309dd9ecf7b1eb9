"""imageapi.org: one synchronous call; its response shape is unconfirmed, so it is read tolerantly.

Its model page documents ``prompt``, ``model``, ``width``, ``height``, ``num_inference_steps``
(max 50) and ``negative_prompt``, and nothing else: no seed, no guidance, one image per call.
Three answer shapes are accepted: OpenAI's ``{"data": [{"url"|"b64_json"}]}``, ``{"images": [...]}``
(each a URL, base64 text, or an object with ``url``/``b64_json``) and ``{"image_url": "..."}``.
Anything else is a protocol error, which the transport logs and the router fails over. Its price is
plan-based and lives in the price catalogue, not here. No idempotency key is documented, so a
generation whose answer was lost (a timeout, a reset, a 5xx) is not sent again to the account.
"""

from __future__ import annotations

from typing import Any

from backends.base import Capabilities
from backends.vendors.messages import HttpAnswer, HttpCall, VendorOutput, nsfw_flagged
from backends.vendors.openai_style import openai_error_fields
from backends.vendors.spec import Behaviour, Options, VendorFacts, VendorSpec
from core.errors import VendorProtocolError
from core.request import ImageRequest


def build_request(request: ImageRequest, options: Options) -> HttpCall:
    body: dict[str, Any] = {
        "prompt": request.prompt,
        "model": options["model"],
        "width": request.width,
        "height": request.height,
        "num_inference_steps": request.steps,
    }
    if request.negative_prompt:
        body["negative_prompt"] = request.negative_prompt
    return HttpCall("POST", "/api/v1/generate", body)


def parse_output(answer: HttpAnswer) -> VendorOutput:
    body = answer.json()
    output = VendorOutput(flagged_nsfw=nsfw_flagged(body))
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        entries = body["data"]
    elif isinstance(body, dict) and isinstance(body.get("images"), list):
        entries = body["images"]
    elif isinstance(body, dict) and isinstance(body.get("image_url"), str):
        entries = [body["image_url"]]
    else:
        raise VendorProtocolError(f"imageapi answered no data, images or image_url: {str(body)[:200]}")
    for entry in entries:
        _add(output, entry)
    return output


def _add(output: VendorOutput, entry: Any) -> None:
    """One image reference: a URL, a data URI, bare base64, or an object holding one of those."""
    if isinstance(entry, dict):
        if isinstance(entry.get("b64_json"), str):
            output.b64_images.append(entry["b64_json"])
            return
        entry = entry.get("url")
    if not isinstance(entry, str) or not entry:
        raise VendorProtocolError(f"imageapi image entry is not a URL or base64: {str(entry)[:200]}")
    if entry.startswith(("https://", "http://")):
        output.image_urls.append(entry)
    elif entry.startswith("data:image/") and ";base64," in entry:
        output.b64_images.append(entry.split(";base64,", 1)[1])
    else:
        output.b64_images.append(entry)


def error_fields(body: Any) -> tuple[str | None, str]:
    """OpenAI's envelope, else ``{"error": "text"}``, else ``{"message": "text"}``."""
    if not isinstance(body, dict):
        return None, str(body)[:300]
    if isinstance(body.get("error"), dict):
        return openai_error_fields(body)
    code = body.get("code")
    code = str(code) if isinstance(code, str | int) and not isinstance(code, bool) else None
    for key in ("error", "message"):
        if isinstance(body.get(key), str):
            return code, body[key][:300]
    return code, str(body)[:300]


MODEL_PAGE = "imageapi.org/models/sdxl-lightning"

BEHAVIOURS = (
    Behaviour("POST /api/v1/generate {prompt, model, width, height, num_inference_steps}, "
              "Authorization: Bearer", f"{MODEL_PAGE}: cURL, Python"),
    Behaviour("negative_prompt is accepted", f"{MODEL_PAGE}: Frequently asked questions"),
    Behaviour("steps: 4 fast, 8 quality, at most 50", f"{MODEL_PAGE}: Quality steps, Fast preset, Max steps"),
    Behaviour("120 s client timeout in their example", f"{MODEL_PAGE}: Python"),
    Behaviour("no seed, guidance or n field", f"{MODEL_PAGE}: (none shown)"),
    Behaviour("the answer is {data: [{url | b64_json}]}, {images: [...]} or {image_url}"),
    Behaviour("errors are OpenAI's envelope, {error: text} or {message: text}"),
    Behaviour("sides 256-1536 (not published)"),
    Behaviour("no idempotency key (only the quick start is public); a 5xx may have run and been billed"),
)

IMAGEAPI = VendorSpec(
    name="imageapi",
    capabilities=Capabilities(max_steps=50, min_side=256, max_side=1536, max_n=1, seed=False, guidance=False),
    build_request=build_request,
    parse_output=parse_output,
    error_fields=error_fields,
    facts=VendorFacts(default_base_url="https://imageapi.org", key_env="IMAGEAPI_API_KEY",
                      price_key="imageapi", demo_priority=40),
    default_options={"model": "sdxl-lightning"},
    behaviours=BEHAVIOURS,
)
