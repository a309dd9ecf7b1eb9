"""The boltgate GPU worker: our own service, so it takes the ``ImageRequest`` as it is.

The body is ``request.model_dump(mode="json")`` (``init_image`` becomes base64, as
``ImageRequest`` serialises bytes), the answer carries base64 images and the GPU-seconds spent.
Errors use OpenAI's envelope; a full queue answers 503 with Retry-After, which the shared status
ladder already retries. The route's key (``WORKER_API_KEY`` unless ``key_env`` says otherwise) is
the worker's shared token, sent as ``Authorization: Bearer``; a worker listening beyond loopback
requires it. Each call says how long the caller still waits (``X-Boltgate-Timeout-S``), so the
worker drops a request whose time ran out while it was queued. A worker configured with fewer
step counts answers 404 ``steps_not_loaded`` for the others, which fails over. Its 503 (queue full,
model loading) and 500 (the pipeline raised on the batch) end a request with nothing left running,
so they are retried; a timeout or a reset may leave it generating (GPU time spent), and is not.
"""

from __future__ import annotations

from backends.base import Capabilities
from backends.vendors.messages import HttpAnswer, HttpCall, VendorOutput, require
from backends.vendors.openai_style import openai_error_fields
from backends.vendors.spec import Behaviour, Options, VendorFacts, VendorSpec
from core.errors import VendorProtocolError
from core.request import ImageRequest

LIGHTNING_STEPS = frozenset({1, 2, 4, 8})
"""The step counts the SDXL-Lightning checkpoints exist for."""


def build_request(request: ImageRequest, options: Options) -> HttpCall:
    return HttpCall("POST", "/v1/generate", request.model_dump(mode="json"))


def parse_output(answer: HttpAnswer) -> VendorOutput:
    body = answer.json()
    images = require(body, "images", list, "worker answer")
    if not all(isinstance(image, str) for image in images):
        raise VendorProtocolError(f"worker images are not base64 strings: {str(images)[:200]}")
    seconds = body.get("gpu_seconds")
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int | float)):
        raise VendorProtocolError(f"worker gpu_seconds is not a number: {str(seconds)[:50]}")
    return VendorOutput(b64_images=images, run_seconds=None if seconds is None else float(seconds))


WORKER = VendorSpec(
    name="worker",
    capabilities=Capabilities(
        max_steps=8,
        fixed_steps=LIGHTNING_STEPS,
        image_to_image=True,
        negative_prompt=False,  # Lightning runs without guidance: a negative prompt would be ignored
        output_formats=frozenset({"png", "jpeg", "webp"}),
    ),
    build_request=build_request,
    parse_output=parse_output,
    error_fields=openai_error_fields,
    deadline_header="X-Boltgate-Timeout-S",
    create_not_started=frozenset({500, 503}),
    facts=VendorFacts(default_base_url=None, key_env="WORKER_API_KEY", price_key="local", key_required=False),
    behaviours=(
        Behaviour("our own service: POST /v1/generate with the ImageRequest", "backends/local/worker_app.py"),
        Behaviour("503 queue full or loading, 500 pipeline failed: the request is over, nothing runs on",
                  "backends/local/worker_app.py, backends/local/batching.py"),
    ),
)
