"""aigateway.sh: OpenAI-compatible, answers with a URL or base64; steps and seed sent explicitly
(several resellers default to 20 steps and guidance 7.5 otherwise)."""

from __future__ import annotations

from backends.base import Capabilities
from backends.vendors.messages import HttpCall
from backends.vendors.openai_style import build_generation, openai_error_fields, parse_generation
from backends.vendors.spec import Options, VendorSpec
from core.request import ImageRequest


def build_request(request: ImageRequest, options: Options) -> HttpCall:
    return build_generation(request, model=options["model"], response_format=options["response_format"])


AIGATEWAY = VendorSpec(
    name="aigateway",
    # Steps 1-20 (assumed): the upstream is likely Cloudflare Workers AI, whose limit that is, and the
    # simulator enforces it; with 50 here a request for 21-50 steps was sent and refused with a 400.
    capabilities=Capabilities(max_steps=20, max_n=4, min_side=256, max_side=1536),
    build_request=build_request,
    parse_output=parse_generation,
    error_fields=openai_error_fields,
    default_options={"model": "bytedance/stable-diffusion-xl-lightning", "response_format": "b64_json"},
)
