"""imageapi.org: one call, read tolerantly because its response shape is unconfirmed."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from typing import Any

import orjson
import pytest
import respx

from backends.vendors.backend import VendorBackend
from backends.vendors.imageapi import IMAGEAPI
from core.deadline import Deadline
from core.errors import (
    AmbiguousCreate,
    BackendError,
    ContentFiltered,
    UnusableOutput,
    VendorAuthError,
    VendorNotFound,
    VendorOutOfCredit,
    VendorRateLimited,
    VendorRejectedRequest,
)
from core.request import ImageRequest

MakeBackend = Callable[..., VendorBackend]

GENERATE = "/api/v1/generate"
IMAGE_URL = "https://cdn.imageapi.test/i/1.png"


async def generate(make_backend: MakeBackend, **fields: Any) -> Any:
    backend = make_backend(IMAGEAPI, options=fields.pop("options", None))
    return await backend.generate(ImageRequest(prompt="a cat", **fields), Deadline(5))


@pytest.fixture
def b64_png(png: bytes) -> str:
    return base64.b64encode(png).decode()


async def test_sends_the_documented_body(
    vendor_api: respx.MockRouter, make_backend: MakeBackend, b64_png: str, base_url: str
) -> None:
    route = vendor_api.post(GENERATE).respond(200, json={"data": [{"b64_json": b64_png}]})
    await generate(make_backend, width=512, height=768, steps=8, negative_prompt="blurry")
    request = route.calls.last.request
    assert str(request.url) == f"{base_url}{GENERATE}"
    assert request.headers["authorization"] == "Bearer k"
    assert orjson.loads(request.content) == {
        "prompt": "a cat",
        "model": "sdxl-lightning",
        "width": 512,
        "height": 768,
        "num_inference_steps": 8,
        "negative_prompt": "blurry",
    }


def test_has_no_seed_or_guidance_field() -> None:
    capabilities = IMAGEAPI.capabilities
    assert capabilities.refusal(ImageRequest(prompt="a cat", seed=3)) == "no seed field"
    assert capabilities.refusal(ImageRequest(prompt="a cat", guidance_scale=2.0)) == "no guidance field"
    assert capabilities.refusal(ImageRequest(prompt="a cat", steps=50, negative_prompt="x")) is None


async def test_leaves_out_an_absent_negative_prompt(
    vendor_api: respx.MockRouter, make_backend: MakeBackend, b64_png: str
) -> None:
    route = vendor_api.post(GENERATE).respond(200, json={"image_url": IMAGE_URL})
    vendor_api.get(IMAGE_URL).respond(200, content=base64.b64decode(b64_png))
    await generate(make_backend)
    assert "negative_prompt" not in orjson.loads(route.calls.last.request.content)


def test_capabilities() -> None:
    assert IMAGEAPI.capabilities.refusal(ImageRequest(prompt="a cat", n=2)) == "n 2 > 1"
    assert IMAGEAPI.capabilities.refusal(ImageRequest(prompt="a cat", steps=50)) is None


@pytest.mark.parametrize(
    "shape",
    [
        lambda b64: {"data": [{"url": IMAGE_URL}]},
        lambda b64: {"data": [{"b64_json": b64}]},
        lambda b64: {"images": [IMAGE_URL]},
        lambda b64: {"images": [b64]},
        lambda b64: {"images": [f"data:image/png;base64,{b64}"]},
        lambda b64: {"images": [{"url": IMAGE_URL}]},
        lambda b64: {"images": [{"b64_json": b64}]},
        lambda b64: {"image_url": IMAGE_URL},
    ],
    ids=[
        "data-url",
        "data-b64",
        "images-url",
        "images-b64",
        "images-data-uri",
        "images-object-url",
        "images-object-b64",
        "image_url",
    ],
)
async def test_reads_every_accepted_shape(
    vendor_api: respx.MockRouter,
    make_backend: MakeBackend,
    png: bytes,
    b64_png: str,
    shape: Callable[[str], dict[str, Any]],
) -> None:
    vendor_api.post(GENERATE).respond(200, json=shape(b64_png))
    vendor_api.get(IMAGE_URL).respond(200, content=png)
    result = await generate(make_backend)
    assert [image.data for image in result.images] == [png]


@pytest.mark.parametrize(("flag", "filtered"), [([True], True), (True, True), ([False], False), (None, False)])
async def test_reads_the_nsfw_flag_where_present(
    vendor_api: respx.MockRouter, make_backend: MakeBackend, b64_png: str, flag: Any, filtered: bool
) -> None:
    vendor_api.post(GENERATE).respond(200, json={"data": [{"b64_json": b64_png}], "nsfw_content_detected": flag})
    if filtered:
        with pytest.raises(ContentFiltered):
            await generate(make_backend)
    else:
        assert len((await generate(make_backend)).images) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"result": "ok"},
        {"data": {"url": IMAGE_URL}},
        {"images": [42]},
        {"images": [{"href": IMAGE_URL}]},
        {"images": [""]},
        {"images": []},
        {"image_url": None},
        ["https://cdn.imageapi.test/i/1.png"],
        {"images": ["this is not an image"]},
    ],
)
async def test_any_other_shape_is_unusable_output(
    vendor_api: respx.MockRouter, make_backend: MakeBackend, body: Any
) -> None:
    vendor_api.post(GENERATE).respond(200, json=body)
    with pytest.raises(UnusableOutput):
        await generate(make_backend)


async def test_an_unknown_shape_is_logged(
    vendor_api: respx.MockRouter, make_backend: MakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    vendor_api.post(GENERATE).respond(200, json={"job": "queued-7"})
    with caplog.at_level(logging.WARNING), pytest.raises(UnusableOutput):
        await generate(make_backend)
    assert "queued-7" in caplog.text


async def test_a_body_that_is_not_json(vendor_api: respx.MockRouter, make_backend: MakeBackend) -> None:
    vendor_api.post(GENERATE).respond(200, content=b"<html>ok</html>")
    with pytest.raises(UnusableOutput):
        await generate(make_backend)


async def test_an_expired_output_url(vendor_api: respx.MockRouter, make_backend: MakeBackend) -> None:
    vendor_api.post(GENERATE).respond(200, json={"image_url": IMAGE_URL})
    vendor_api.get(IMAGE_URL).respond(404)
    with pytest.raises(UnusableOutput, match="404"):
        await generate(make_backend)


@pytest.mark.parametrize(
    ("status", "body", "code", "message", "kind"),
    [
        (
            401,
            {"error": {"code": "invalid_api_key", "message": "bad key", "type": "auth"}},
            "invalid_api_key",
            "bad key",
            VendorAuthError,
        ),
        (402, {"error": "Out of credits", "code": "no_credits"}, "no_credits", "Out of credits", VendorOutOfCredit),
        (403, {"message": "Plan does not include this model"}, None, "Plan does not include", VendorAuthError),
        (400, {"error": "prompt is required"}, None, "prompt is required", VendorRejectedRequest),
        (404, {"message": "Not Found"}, None, "Not Found", VendorNotFound),
        (
            422,
            {"error": {"type": "invalid_request_error", "message": "width"}},
            "invalid_request_error",
            "width",
            VendorRejectedRequest,
        ),
        (429, {"error": "Too many requests"}, None, "Too many requests", VendorRateLimited),
        (500, {"message": "Internal Server Error"}, None, "Internal Server Error", AmbiguousCreate),
        (502, {"weird": True}, None, "weird", AmbiguousCreate),
    ],
)
async def test_error_answers(
    vendor_api: respx.MockRouter,
    make_backend: MakeBackend,
    status: int,
    body: dict[str, Any],
    code: str | None,
    message: str,
    kind: type[BackendError],
) -> None:
    vendor_api.post(GENERATE).respond(status, json=body)
    with pytest.raises(kind) as caught:
        await generate(make_backend)
    assert type(caught.value) is kind
    assert caught.value.vendor_code == code
    assert message in caught.value.message


async def test_an_html_error_page_keeps_its_status(vendor_api: respx.MockRouter, make_backend: MakeBackend) -> None:
    vendor_api.post(GENERATE).respond(503, content=b"<html>Service Unavailable</html>")
    with pytest.raises(AmbiguousCreate, match="Service Unavailable") as caught:
        await generate(make_backend)
    assert caught.value.status == 503
