"""aigateway.sh: OpenAI-compatible, URL or base64 answers, OpenAI's error envelope."""

from __future__ import annotations

import base64
import email.utils
import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest
import respx

from backends.vendors.aigateway import AIGATEWAY
from backends.vendors.backend import VendorBackend
from core.deadline import Deadline
from core.errors import (
    AmbiguousCreate,
    BackendError,
    UnusableOutput,
    VendorAuthError,
    VendorNotFound,
    VendorOutOfCredit,
    VendorRateLimited,
)
from core.request import ImageRequest

MakeBackend = Callable[..., VendorBackend]

GENERATIONS = "/v1/images/generations"
IMAGE_URL = "https://media.aigateway.test/img/abc.png"


async def generate(make_backend: MakeBackend, **fields: Any) -> Any:
    backend = make_backend(AIGATEWAY, options=fields.pop("options", None))
    return await backend.generate(ImageRequest(prompt="a cat", **fields), Deadline(5))


async def test_sends_the_model_name_and_asks_for_base64_by_default(
    vendor_api: respx.MockRouter, make_backend: MakeBackend, png: bytes, base_url: str
) -> None:
    route = vendor_api.post(GENERATIONS).respond(
        200, json={"created": 1, "data": [{"b64_json": base64.b64encode(png).decode()}]}
    )
    result = await generate(make_backend, n=2, width=768, height=512)
    request = route.calls.last.request
    assert str(request.url) == f"{base_url}{GENERATIONS}"
    assert request.headers["authorization"] == "Bearer k"
    # Exactly the fields their model page documents: no seed, steps, negative prompt or guidance.
    assert orjson.loads(request.content) == {
        "model": "bytedance/stable-diffusion-xl-lightning",
        "prompt": "a cat",
        "n": 2,
        "size": "768x512",
        "response_format": "b64_json",
    }
    assert [image.data for image in result.images] == [png]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [({"seed": 5}, "seed"), ({"steps": 4}, "steps"), ({"negative_prompt": "x"}, "negative_prompt"),
     ({"guidance_scale": 0.0}, "guidance")],
)
def test_a_request_asking_for_what_it_has_no_field_for_is_skipped(fields: dict[str, object], reason: str) -> None:
    refusal = AIGATEWAY.capabilities.refusal(ImageRequest(prompt="a cat", **fields))  # type: ignore[arg-type]
    assert refusal is not None and reason in refusal
    assert AIGATEWAY.capabilities.refusal(ImageRequest(prompt="a cat", n=4)) is None


async def test_reads_urls_when_configured_for_them(
    vendor_api: respx.MockRouter, make_backend: MakeBackend, png: bytes
) -> None:
    route = vendor_api.post(GENERATIONS).respond(200, json={"created": 1, "data": [{"url": IMAGE_URL}]})
    vendor_api.get(IMAGE_URL).respond(200, content=png)
    result = await generate(make_backend, options={"response_format": "url"})
    assert orjson.loads(route.calls.last.request.content)["response_format"] == "url"
    assert [image.data for image in result.images] == [png]


async def test_an_expired_output_url(vendor_api: respx.MockRouter, make_backend: MakeBackend) -> None:
    vendor_api.post(GENERATIONS).respond(200, json={"created": 1, "data": [{"url": IMAGE_URL}]})
    vendor_api.get(IMAGE_URL).respond(404)
    with pytest.raises(UnusableOutput, match="404"):
        await generate(make_backend)


@pytest.mark.parametrize("body", [{"created": 1}, {"data": [{"uri": IMAGE_URL}]}, {"data": "x"}])
async def test_a_body_it_does_not_know_is_unusable_output(
    vendor_api: respx.MockRouter, make_backend: MakeBackend, body: Any
) -> None:
    vendor_api.post(GENERATIONS).respond(200, json=body)
    with pytest.raises(UnusableOutput):
        await generate(make_backend)


@pytest.mark.parametrize(
    ("status", "error_type", "kind"),
    [
        (401, "authentication_error", VendorAuthError),
        (402, "insufficient_credits", VendorOutOfCredit),
        (404, "not_found", VendorNotFound),
        (429, "rate_limit_error", VendorRateLimited),
        (500, "server_error", AmbiguousCreate),  # no documented idempotency: it may have run
        (503, "service_unavailable", AmbiguousCreate),
    ],
)
async def test_error_answers(
    vendor_api: respx.MockRouter,
    make_backend: MakeBackend,
    status: int,
    error_type: str,
    kind: type[BackendError],
) -> None:
    vendor_api.post(GENERATIONS).respond(status, json={"error": {"type": error_type, "message": "no"}})
    with pytest.raises(kind) as caught:
        await generate(make_backend)
    assert type(caught.value) is kind
    assert caught.value.vendor_code == error_type


async def test_rate_limits_carry_retry_after_seconds(vendor_api: respx.MockRouter, make_backend: MakeBackend) -> None:
    vendor_api.post(GENERATIONS).respond(
        429, json={"error": {"type": "rate_limit_error", "message": "slow"}}, headers={"Retry-After": "3"}
    )
    with pytest.raises(VendorRateLimited) as caught:
        await generate(make_backend)
    assert caught.value.retry_after == 3.0


async def test_rate_limits_carry_retry_after_as_a_date(vendor_api: respx.MockRouter, make_backend: MakeBackend) -> None:
    when = email.utils.formatdate(time.time() + 20, usegmt=True)
    vendor_api.post(GENERATIONS).respond(
        429, json={"error": {"type": "rate_limit_error", "message": "slow"}}, headers={"Retry-After": when}
    )
    with pytest.raises(VendorRateLimited) as caught:
        await generate(make_backend)
    assert caught.value.retry_after is not None and 18 <= caught.value.retry_after <= 20


async def test_a_503_answering_a_generation_is_never_retried_there(
    vendor_api: respx.MockRouter, make_backend: MakeBackend
) -> None:
    vendor_api.post(GENERATIONS).respond(
        503, json={"error": {"type": "service_unavailable", "message": "busy"}}, headers={"retry-after-ms": "1500"}
    )
    with pytest.raises(AmbiguousCreate) as caught:
        await generate(make_backend)
    assert not caught.value.retryable and caught.value.failover and caught.value.billed
    assert caught.value.status == 503
