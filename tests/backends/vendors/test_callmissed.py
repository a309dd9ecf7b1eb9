"""CallMissed: OpenAI-compatible, base64 only, OpenAI's error envelope."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import orjson
import pytest
import respx

from backends.vendors.backend import VendorBackend
from backends.vendors.callmissed import CALLMISSED
from core.deadline import Deadline
from core.errors import (
    AmbiguousCreate,
    BackendError,
    UnusableOutput,
    VendorAuthError,
    VendorNotFound,
    VendorOutOfCredit,
    VendorRateLimited,
    VendorRejectedRequest,
    VendorUnavailable,
)
from core.request import ImageRequest

MakeBackend = Callable[..., VendorBackend]

GENERATIONS = "/v1/images/generations"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def generate(make_backend: MakeBackend, **fields: Any) -> Any:
    backend = make_backend(CALLMISSED)
    return await backend.generate(ImageRequest(prompt="a cat", **fields), Deadline(5))


async def test_sends_an_openai_request_forcing_b64_json(
    vendor_api: respx.MockRouter, make_backend: MakeBackend, png: bytes, base_url: str
) -> None:
    route = vendor_api.post(GENERATIONS).respond(200, json={"created": 1, "data": [{"b64_json": b64(png)}] * 2})
    await generate(
        make_backend,
        n=2,
        width=768,
        height=512,
        seed=9,
        steps=6,
        negative_prompt="blurry",
        response_format="url",
    )
    request = route.calls.last.request
    assert str(request.url) == f"{base_url}{GENERATIONS}"
    assert request.headers["authorization"] == "Bearer k"
    assert request.headers["content-type"] == "application/json"
    assert orjson.loads(request.content) == {
        "model": "sdxl-lightning",
        "prompt": "a cat",
        "n": 2,
        "size": "768x512",
        "response_format": "b64_json",
        "seed": 9,
        "steps": 6,
        "negative_prompt": "blurry",
    }


def test_a_request_setting_guidance_is_not_sent_to_callmissed() -> None:
    """Their parameters list no guidance: a request asking for one goes to a vendor that has it."""
    assert CALLMISSED.capabilities.refusal(ImageRequest(prompt="a cat", guidance_scale=1.0)) == "no guidance field"
    assert CALLMISSED.capabilities.refusal(ImageRequest(prompt="a cat", seed=1, steps=50)) is None


async def test_reads_png_and_jpeg_images(
    vendor_api: respx.MockRouter, make_backend: MakeBackend, png: bytes, jpeg: bytes
) -> None:
    vendor_api.post(GENERATIONS).respond(
        200,
        json={
            "created": 1,
            "data": [{"b64_json": b64(png), "revised_prompt": None}, {"b64_json": b64(jpeg), "revised_prompt": None}],
        },
    )
    result = await generate(make_backend, n=2)
    assert [image.format for image in result.images] == ["png", "jpeg"]
    assert [image.data for image in result.images] == [png, jpeg]
    assert result.images[0].b64 == b64(png)


def test_capabilities() -> None:
    assert CALLMISSED.capabilities.refusal(ImageRequest(prompt="a cat", n=4, steps=50)) is None
    assert CALLMISSED.capabilities.refusal(ImageRequest(prompt="a cat", init_image=b"x")) is not None


@pytest.mark.parametrize(
    "body",
    [
        {"created": 1},
        {"data": {"b64_json": "x"}},
        {"data": [{"revised_prompt": None}]},
        {"data": [{"b64_json": 12}]},
        {"data": []},
        {"data": [{"b64_json": base64.b64encode(b"plain text, no image").decode()}]},
        {"error": None},
    ],
)
async def test_a_body_it_does_not_know_is_unusable_output(
    vendor_api: respx.MockRouter, make_backend: MakeBackend, body: Any
) -> None:
    vendor_api.post(GENERATIONS).respond(200, json=body)
    with pytest.raises(UnusableOutput):
        await generate(make_backend)


async def test_a_body_that_is_not_json(vendor_api: respx.MockRouter, make_backend: MakeBackend) -> None:
    vendor_api.post(GENERATIONS).respond(200, content=b"\x00\x01")
    with pytest.raises(UnusableOutput, match="not JSON"):
        await generate(make_backend)


def envelope(code: str | None, message: str, kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "type": kind}}


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (400, "invalid_size", VendorRejectedRequest),
        (401, "invalid_api_key", VendorAuthError),
        (402, "insufficient_credits", VendorOutOfCredit),
        (402, "budget_exceeded", VendorOutOfCredit),
        (403, "forbidden", VendorAuthError),
        (404, "model_not_found", VendorNotFound),
        (409, "idempotency_key_reused", AmbiguousCreate),  # its key replayed: the first may be running
        (422, "invalid_prompt", VendorRejectedRequest),
        (429, "rate_limit_exceeded", VendorRateLimited),
        (500, "internal_error", VendorUnavailable),
        (501, "not_implemented", VendorUnavailable),
        (503, "overloaded", VendorUnavailable),
    ],
)
async def test_error_answers(
    vendor_api: respx.MockRouter, make_backend: MakeBackend, status: int, code: str, kind: type[BackendError]
) -> None:
    vendor_api.post(GENERATIONS).respond(status, json=envelope(code, f"failed with {code}"))
    with pytest.raises(kind) as caught:
        await generate(make_backend)
    assert type(caught.value) is kind
    assert caught.value.status == status
    assert caught.value.vendor_code == code
    assert f"failed with {code}" in caught.value.message


async def test_an_envelope_without_code_falls_back_to_its_type(
    vendor_api: respx.MockRouter, make_backend: MakeBackend
) -> None:
    vendor_api.post(GENERATIONS).respond(400, json=envelope(None, "bad", kind="invalid_request_error"))
    with pytest.raises(VendorRejectedRequest) as caught:
        await generate(make_backend)
    assert caught.value.vendor_code == "invalid_request_error"


async def test_rate_limits_carry_retry_after(vendor_api: respx.MockRouter, make_backend: MakeBackend) -> None:
    vendor_api.post(GENERATIONS).respond(
        429,
        json=envelope("rate_limit_exceeded", "slow down"),
        headers={"Retry-After": "7", "X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0"},
    )
    with pytest.raises(VendorRateLimited) as caught:
        await generate(make_backend)
    assert caught.value.retry_after == 7.0
