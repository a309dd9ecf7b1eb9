"""Runflow: create a run, poll it, fetch its JPEG URLs; cancel what nobody waits for any more."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
import respx

from backends.vendors.backend import VendorBackend
from backends.vendors.runflow import RUNFLOW
from core.deadline import Deadline
from core.errors import (
    BackendError,
    ContentFiltered,
    JobAbandoned,
    JobFailed,
    VendorAuthError,
    VendorNotFound,
    VendorProtocolError,
    VendorRateLimited,
    VendorRejectedRequest,
    VendorUnavailable,
)
from core.request import ImageRequest

MakeBackend = Callable[..., VendorBackend]

CREATE = "/v1/models/bytedance/sd-xl-lightning/runs"
RUN = "/v1/runs/run-1"
CANCEL = "/v1/runs/run-1/cancel"
IMAGE_URL = "https://files.runflow.test/out/1.jpg?sig=abc"


def run(status: str, **fields: Any) -> httpx.Response:
    return httpx.Response(200, json={"id": "run-1", "status_code": status, **fields})


def created() -> httpx.Response:
    return httpx.Response(201, json={"id": "run-1", "status_code": "queued", "input": {}})


def succeeded(*urls: str, **fields: Any) -> httpx.Response:
    return run("succeeded", output={"image_urls": list(urls or [IMAGE_URL])}, duration_ms=1234, cost="0.003", **fields)


@pytest.fixture
def api(vendor_api: respx.MockRouter, jpeg: bytes) -> respx.MockRouter:
    vendor_api.post(CREATE, name="create").mock(return_value=created())
    vendor_api.post(CANCEL, name="cancel").respond(200, json={"id": "run-1", "status_code": "canceled"})
    vendor_api.get(IMAGE_URL, name="image").respond(200, content=jpeg)
    return vendor_api


async def generate(make_backend: MakeBackend, *, timeout_s: float = 5.0, **fields: Any) -> Any:
    backend = make_backend(RUNFLOW, timeout_s=timeout_s, options=fields.pop("options", None))
    return await backend.generate(ImageRequest(prompt="a cat", **fields), Deadline(5))


class TestRequest:
    async def test_creates_a_run_of_the_model_with_every_input(
        self, api: respx.MockRouter, make_backend: MakeBackend, base_url: str
    ) -> None:
        api.get(RUN).mock(return_value=succeeded())
        await generate(
            make_backend, seed=42, width=768, height=1024, steps=8, guidance_scale=1.5, negative_prompt="blurry"
        )
        request = api["create"].calls.last.request
        assert str(request.url) == f"{base_url}{CREATE}"
        assert request.headers["authorization"] == "Bearer k"
        assert orjson.loads(request.content) == {
            "input": {
                "prompt": "a cat",
                "negative_prompt": "blurry",
                "seed": 42,
                "width": 768,
                "height": 1024,
                "guidance": 1.5,
                "steps": 8,
            },
        }

    async def test_leaves_out_an_absent_negative_prompt(self, api: respx.MockRouter, make_backend: MakeBackend) -> None:
        api.get(RUN).mock(return_value=succeeded())
        await generate(make_backend)
        assert "negative_prompt" not in orjson.loads(api["create"].calls.last.request.content)["input"]

    async def test_the_model_path_is_an_option(
        self, vendor_api: respx.MockRouter, make_backend: MakeBackend, jpeg: bytes
    ) -> None:
        create = vendor_api.post("/v1/models/sd-xl-lightning/runs").mock(return_value=created())
        vendor_api.get(RUN).mock(return_value=succeeded())
        vendor_api.get(IMAGE_URL).respond(200, content=jpeg)
        await generate(make_backend, options={"model_path": "sd-xl-lightning"})
        assert create.called

    def test_serves_one_image_per_run_up_to_12_steps(self) -> None:
        capabilities = RUNFLOW.capabilities
        assert capabilities.refusal(ImageRequest(prompt="a cat", steps=12)) is None
        assert capabilities.refusal(ImageRequest(prompt="a cat", n=2)) == "n 2 > 1"
        assert capabilities.refusal(ImageRequest(prompt="a cat", steps=13)) is not None
        assert capabilities.refusal(ImageRequest(prompt="a cat", init_image=b"x")) == "no image-to-image"
        assert capabilities.output_formats == {"jpeg"}


class TestLifecycle:
    async def test_succeeds_after_several_polls(
        self, api: respx.MockRouter, make_backend: MakeBackend, jpeg: bytes
    ) -> None:
        poll = api.get(RUN).mock(side_effect=[run("queued"), run("dispatching"), run("running"), succeeded()])
        result = await generate(make_backend)
        assert poll.call_count == 4
        assert [image.data for image in result.images] == [jpeg]
        assert result.images[0].format == "jpeg"
        assert result.run_seconds == pytest.approx(1.234)
        assert result.vendor_cost_usd == Decimal("0.003")
        assert result.vendor_request_id == "run-1"
        assert not api["cancel"].called

    async def test_fetches_every_image_url(self, api: respx.MockRouter, make_backend: MakeBackend, jpeg: bytes) -> None:
        api.get("https://files.runflow.test/out/2.jpg").respond(200, content=jpeg)
        api.get(RUN).mock(return_value=succeeded(IMAGE_URL, "https://files.runflow.test/out/2.jpg"))
        result = await generate(make_backend)
        assert len(result.images) == 2

    async def test_a_partial_success_with_images_is_a_success(
        self, api: respx.MockRouter, make_backend: MakeBackend
    ) -> None:
        api.get(RUN).mock(return_value=run("partial_succeeded", output={"image_urls": [IMAGE_URL]}))
        result = await generate(make_backend)
        assert len(result.images) == 1

    async def test_a_partial_success_without_images_is_a_failure(
        self, api: respx.MockRouter, make_backend: MakeBackend
    ) -> None:
        api.get(RUN).mock(return_value=run("partial_succeeded", output={"image_urls": []}, cost="0.003"))
        with pytest.raises(JobFailed) as caught:
            await generate(make_backend)
        assert caught.value.billed

    async def test_a_failed_run_that_cost_money_is_billed(
        self, api: respx.MockRouter, make_backend: MakeBackend
    ) -> None:
        api.get(RUN).mock(
            side_effect=[
                run("running"),
                run(
                    "failed",
                    failure_code="INFERENCE_ERROR",
                    failure_message="CUDA OOM",
                    cost="0.003",
                    duration_ms=900,
                    failure_stage_code="RUN",
                ),
            ]
        )
        with pytest.raises(JobFailed) as caught:
            await generate(make_backend)
        error = caught.value
        assert error.billed
        assert error.vendor_code == "INFERENCE_ERROR"
        assert "CUDA OOM" in error.message
        assert error.vendor_cost_usd == Decimal("0.003")
        assert error.run_seconds == pytest.approx(0.9)
        assert error.failover and not error.retryable

    @pytest.mark.parametrize("cost", [None, "0", "0.000"])
    async def test_a_failed_run_that_cost_nothing_is_not_billed(
        self, api: respx.MockRouter, make_backend: MakeBackend, cost: str | None
    ) -> None:
        api.get(RUN).mock(return_value=run("failed", failure_code="INVALID_INPUT", cost=cost))
        with pytest.raises(JobFailed) as caught:
            await generate(make_backend)
        assert not caught.value.billed

    @pytest.mark.parametrize("status", ["canceled", "cancelled"])
    async def test_a_run_cancelled_elsewhere_is_a_failure(
        self, api: respx.MockRouter, make_backend: MakeBackend, status: str
    ) -> None:
        api.get(RUN).mock(return_value=run(status))
        with pytest.raises(JobFailed) as caught:
            await generate(make_backend)
        assert caught.value.vendor_code == status

    async def test_an_unknown_status_is_a_protocol_error_and_the_run_is_cancelled(
        self, api: respx.MockRouter, make_backend: MakeBackend
    ) -> None:
        api.get(RUN).mock(return_value=run("hibernating"))
        with pytest.raises(VendorProtocolError, match="hibernating"):
            await generate(make_backend)
        assert api["cancel"].called

    async def test_the_deadline_abandons_and_cancels_the_run(
        self, api: respx.MockRouter, make_backend: MakeBackend
    ) -> None:
        poll = api.get(RUN).mock(return_value=run("queued"))
        with pytest.raises(JobAbandoned):
            await generate(make_backend, timeout_s=0.05)
        assert poll.called
        assert api["cancel"].call_count == 1
        cancel = api["cancel"].calls.last.request
        assert cancel.method == "POST" and cancel.headers["authorization"] == "Bearer k"

    async def test_a_cancelled_task_cancels_the_run(self, api: respx.MockRouter, make_backend: MakeBackend) -> None:
        poll = api.get(RUN).mock(return_value=run("running"))
        backend = make_backend(RUNFLOW)
        task = asyncio.create_task(backend.generate(ImageRequest(prompt="a cat"), Deadline(5)))
        async with asyncio.timeout(2):
            while not poll.called:
                await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert api["cancel"].call_count == 1

    async def test_a_vanished_run_is_not_found(self, api: respx.MockRouter, make_backend: MakeBackend) -> None:
        api.get(RUN).respond(404, json={"code": "RUN_NOT_FOUND", "message": "no such run"})
        with pytest.raises(VendorNotFound) as caught:
            await generate(make_backend)
        assert caught.value.vendor_code == "RUN_NOT_FOUND"

    async def test_a_run_flagged_nsfw_is_content_filtered(
        self, api: respx.MockRouter, make_backend: MakeBackend
    ) -> None:
        api.get(RUN).mock(
            return_value=run("succeeded", output={"image_urls": [IMAGE_URL], "nsfw_content_detected": [True]})
        )
        with pytest.raises(ContentFiltered):
            await generate(make_backend)


class TestMalformed:
    @pytest.mark.parametrize("body", [b"<html>busy</html>", b'{"status_code": "queued"}', b'{"id": 7}', b"[]"])
    async def test_a_create_answer_without_a_run_id(
        self, vendor_api: respx.MockRouter, make_backend: MakeBackend, body: bytes
    ) -> None:
        vendor_api.post(CREATE).respond(201, content=body)
        with pytest.raises(VendorProtocolError):
            await generate(make_backend)

    @pytest.mark.parametrize(
        "output", [None, {}, {"image_urls": []}, {"image_urls": "https://a/b.jpg"}, {"image_urls": [1]}]
    )
    async def test_a_success_without_image_urls(
        self, api: respx.MockRouter, make_backend: MakeBackend, output: Any
    ) -> None:
        api.get(RUN).mock(return_value=run("succeeded", output=output))
        with pytest.raises(VendorProtocolError):
            await generate(make_backend)

    async def test_a_run_without_status(self, api: respx.MockRouter, make_backend: MakeBackend) -> None:
        api.get(RUN).respond(200, json={"id": "run-1"})
        with pytest.raises(VendorProtocolError):
            await generate(make_backend)

    async def test_an_expired_output_url(self, api: respx.MockRouter, make_backend: MakeBackend) -> None:
        api.get(RUN).mock(return_value=succeeded())
        api["image"].respond(404, content=b"expired")
        with pytest.raises(VendorProtocolError, match="404"):
            await generate(make_backend)

    async def test_an_unreadable_cost_is_left_out_not_invented(
        self, api: respx.MockRouter, make_backend: MakeBackend
    ) -> None:
        api.get(RUN).mock(return_value=run("succeeded", output={"image_urls": [IMAGE_URL]}, cost="cheap"))
        result = await generate(make_backend)
        assert result.vendor_cost_usd is None
        assert result.run_seconds is None


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (401, {"code": "UNAUTHORIZED", "message": "bad token"}, VendorAuthError),
        (402, {"code": "INSUFFICIENT_CREDIT", "message": "top up"}, VendorAuthError),
        (403, {"code": "PERMISSION_DENIED", "message": "not yours"}, VendorAuthError),
        (404, {"code": "MODEL_NOT_FOUND", "message": "no model"}, VendorNotFound),
        (409, {"code": "CONFLICT", "message": "duplicate client_ref"}, VendorRejectedRequest),
        (
            422,
            {
                "code": "VALIDATION_ERROR",
                "message": "invalid input",
                "errors": [{"field": "input.steps", "message": "must be <= 12"}],
            },
            VendorRejectedRequest,
        ),
        (429, {"code": "RATE_LIMITED", "message": "slow down"}, VendorRateLimited),
        (500, {"code": "INTERNAL", "message": "oops"}, VendorUnavailable),
        (503, {"code": "MODEL_UNAVAILABLE", "message": "warming up"}, VendorUnavailable),
    ],
)
async def test_error_answers(
    vendor_api: respx.MockRouter,
    make_backend: MakeBackend,
    status: int,
    body: dict[str, Any],
    kind: type[BackendError],
) -> None:
    vendor_api.post(CREATE).respond(status, json=body)
    with pytest.raises(kind) as caught:
        await generate(make_backend)
    error = caught.value
    assert type(error) is kind
    assert error.status == status
    assert error.vendor_code == body["code"]
    assert body["message"] in error.message


async def test_validation_details_reach_the_message(vendor_api: respx.MockRouter, make_backend: MakeBackend) -> None:
    vendor_api.post(CREATE).respond(
        422, json={"code": "VALIDATION_ERROR", "message": "invalid input", "errors": [{"field": "input.steps"}]}
    )
    with pytest.raises(VendorRejectedRequest, match=r"input\.steps"):
        await generate(make_backend)


async def test_rate_limits_carry_no_retry_after(vendor_api: respx.MockRouter, make_backend: MakeBackend) -> None:
    """Runflow sends no Retry-After: the router's own backoff applies."""
    vendor_api.post(CREATE).respond(429, json={"code": "RATE_LIMITED", "message": "slow down"})
    with pytest.raises(VendorRateLimited) as caught:
        await generate(make_backend)
    assert caught.value.retry_after is None
