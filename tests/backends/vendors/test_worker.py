"""The GPU worker: the ImageRequest as JSON in, base64 images and GPU-seconds out."""

from __future__ import annotations

import base64
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import respx

from backends.vendors.backend import VendorBackend
from backends.vendors.worker import WORKER
from core.deadline import Deadline
from core.errors import BackendError, UnusableOutput, VendorRejectedRequest, VendorUnavailable
from core.request import ImageRequest

MakeBackend = Callable[..., VendorBackend]

GENERATE = "/v1/generate"


def answer(*images: bytes, **fields: Any) -> dict[str, Any]:
    return {
        "images": [base64.b64encode(image).decode() for image in images],
        "format": "png",
        "gpu_seconds": 0.42,
        "batch_size": 3,
        "device": "cuda:0",
        **fields,
    }


async def test_sends_the_image_request_as_json_without_auth(
    vendor_api: respx.MockRouter, make_backend: MakeBackend, png: bytes, jpeg: bytes, base_url: str
) -> None:
    route = vendor_api.post(GENERATE).respond(200, json=answer(png))
    request = ImageRequest(
        prompt="a cat",
        seed=11,
        steps=2,
        init_image=jpeg,
        strength=0.4,
        max_price_usd=Decimal("0.01"),
        negative_prompt="blurry",
    )
    await make_backend(WORKER, api_key=None).generate(request, Deadline(5))
    sent = route.calls.last.request
    assert str(sent.url) == f"{base_url}{GENERATE}"
    assert "authorization" not in sent.headers
    assert ImageRequest.model_validate_json(sent.content) == request


async def test_sends_a_bearer_key_when_one_is_set(
    vendor_api: respx.MockRouter, make_backend: MakeBackend, png: bytes
) -> None:
    route = vendor_api.post(GENERATE).respond(200, json=answer(png))
    await make_backend(WORKER, api_key="worker-secret").generate(ImageRequest(prompt="a cat"), Deadline(5))
    assert route.calls.last.request.headers["authorization"] == "Bearer worker-secret"


async def test_reads_base64_images_and_gpu_seconds(
    vendor_api: respx.MockRouter, make_backend: MakeBackend, png: bytes
) -> None:
    vendor_api.post(GENERATE).respond(200, json=answer(png, png))
    result = await make_backend(WORKER).generate(ImageRequest(prompt="a cat", n=2), Deadline(5))
    assert [image.data for image in result.images] == [png, png]
    assert result.run_seconds == pytest.approx(0.42)


async def test_gpu_seconds_may_be_absent(vendor_api: respx.MockRouter, make_backend: MakeBackend, png: bytes) -> None:
    body = answer(png)
    del body["gpu_seconds"]
    vendor_api.post(GENERATE).respond(200, json=body)
    result = await make_backend(WORKER).generate(ImageRequest(prompt="a cat"), Deadline(5))
    assert result.run_seconds is None


def test_serves_only_the_lightning_step_counts() -> None:
    capabilities = WORKER.capabilities
    for steps in (1, 2, 4, 8):
        assert capabilities.refusal(ImageRequest(prompt="a cat", steps=steps)) is None
    assert capabilities.refusal(ImageRequest(prompt="a cat", steps=3)) is not None
    assert capabilities.refusal(ImageRequest(prompt="a cat", steps=12)) is not None
    assert capabilities.refusal(ImageRequest(prompt="a cat", init_image=b"x")) is None
    assert capabilities.output_formats == {"png", "jpeg", "webp"}


@pytest.mark.parametrize(
    "body",
    [
        {"format": "png"},
        {"images": "abc"},
        {"images": [1]},
        {"images": ["aGVsbG8="]},
        {"images": [], "gpu_seconds": 1.0},
        {"images": ["x"], "gpu_seconds": "fast"},
    ],
)
async def test_a_body_it_does_not_know_is_unusable_output(
    vendor_api: respx.MockRouter, make_backend: MakeBackend, body: Any
) -> None:
    vendor_api.post(GENERATE).respond(200, json=body)
    with pytest.raises(UnusableOutput):
        await make_backend(WORKER).generate(ImageRequest(prompt="a cat"), Deadline(5))


@pytest.mark.parametrize(
    ("status", "code", "kind", "retry_after"),
    [
        (503, "queue_full", VendorUnavailable, 2.0),
        (500, "internal_error", VendorUnavailable, None),
        (400, "invalid_request", VendorRejectedRequest, None),
    ],
)
async def test_error_answers(
    vendor_api: respx.MockRouter,
    make_backend: MakeBackend,
    status: int,
    code: str,
    kind: type[BackendError],
    retry_after: float | None,
) -> None:
    headers = {"Retry-After": "2"} if retry_after is not None else {}
    vendor_api.post(GENERATE).respond(
        status, json={"error": {"code": code, "message": "no", "type": "server_error"}}, headers=headers
    )
    with pytest.raises(kind) as caught:
        await make_backend(WORKER).generate(ImageRequest(prompt="a cat"), Deadline(5))
    assert caught.value.vendor_code == code
    assert caught.value.retry_after == retry_after


async def test_tells_the_worker_how_long_the_caller_still_waits(
    vendor_api: respx.MockRouter, make_backend: MakeBackend, png: bytes
) -> None:
    route = vendor_api.post(GENERATE).respond(200, json=answer(png))
    await make_backend(WORKER, api_key=None).generate(ImageRequest(prompt="a cat"), Deadline(3))
    assert 2.5 < float(route.calls.last.request.headers["x-boltgate-timeout-s"]) <= 3
