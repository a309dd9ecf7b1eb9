"""Eachlabs: create a prediction (every input a string), poll it, fetch its PNG URL(s)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
import respx

from backends.vendors.backend import VendorBackend
from backends.vendors.eachlabs import EACHLABS
from core.deadline import Deadline
from core.errors import (
    BackendError,
    ContentFiltered,
    JobAbandoned,
    JobFailed,
    UnusableOutput,
    VendorAuthError,
    VendorOutOfCredit,
    VendorRateLimited,
    VendorRejectedRequest,
    VendorUnavailable,
)
from core.request import ImageRequest

MakeBackend = Callable[..., VendorBackend]

CREATE = "/v1/prediction/"
PREDICTION = "/v1/prediction/p-1"
CANCEL = "/v1/prediction/p-1/cancel"
FOREIGN_CANCEL = "https://api.eachlabs.test/v1/prediction/p-1/cancel"
"""A cancel URL an answer names on another host than the route's: never called with our key."""
IMAGE_URL = "https://storage.eachlabs.test/p-1/out-0.png"
IMAGE_URL_2 = "https://storage.eachlabs.test/p-1/out-1.png"


def prediction(status: str, **fields: Any) -> httpx.Response:
    return httpx.Response(200, json={"id": "p-1", "input": {}, "status": status, "logs": "", **fields})


def success(output: Any = IMAGE_URL, **fields: Any) -> httpx.Response:
    return prediction("success", output=output, metrics={"predict_time": 2.1, "cost": 0.0032}, **fields)


def errored(code: str, message: str, cost: float | None = 0.0031, predict_time: float = 2.0) -> httpx.Response:
    """Their documented failure: ``status: "error"``, the reason in ``output``'s envelope."""
    envelope = {"error": "Execution failed", "error_code": code, "error_message": message, "retryable": False,
                "success": False, "status": "ERROR"}
    return prediction("error", output=envelope, metrics={"predict_time": predict_time, "cost": cost})


@pytest.fixture
def api(vendor_api: respx.MockRouter, png: bytes) -> respx.MockRouter:
    vendor_api.post(CREATE, name="create").respond(
        200, json={"status": "success", "message": "Prediction created", "predictionID": "p-1"}
    )
    vendor_api.post(CANCEL, name="cancel").respond(
        200, json={"status": "success", "message": "Prediction canceled successfully"})
    vendor_api.post(FOREIGN_CANCEL, name="foreign_cancel").respond(200, json={"status": "success"})
    vendor_api.get(IMAGE_URL, name="image").respond(200, content=png)
    vendor_api.get(IMAGE_URL_2).respond(200, content=png)
    return vendor_api


async def generate(make_backend: MakeBackend, *, timeout_s: float = 5.0, **fields: Any) -> Any:
    backend = make_backend(EACHLABS, timeout_s=timeout_s, options=fields.pop("options", None))
    return await backend.generate(ImageRequest(prompt="a cat", **fields), Deadline(5))


def sent_input(api: respx.MockRouter) -> dict[str, Any]:
    fields: dict[str, Any] = orjson.loads(api["create"].calls.last.request.content)["input"]
    return fields


class TestRequest:
    async def test_sends_the_model_and_every_input_as_a_string(
        self, api: respx.MockRouter, make_backend: MakeBackend, base_url: str
    ) -> None:
        api.get(PREDICTION).mock(return_value=success([IMAGE_URL, IMAGE_URL_2]))
        await generate(make_backend, seed=7, width=768, height=512, n=2, steps=4, negative_prompt="blurry")
        request = api["create"].calls.last.request
        assert str(request.url) == f"{base_url}{CREATE}"
        assert request.headers["authorization"] == "Bearer k"  # their docs, since July 2026
        assert "x-api-key" not in request.headers
        assert orjson.loads(request.content) == {
            "model": "sdxl-lightning-4step",
            "version": "0.0.1",
            "input": {
                "prompt": "a cat",
                "negative_prompt": "blurry",
                "width": "768",
                "height": "512",
                "num_outputs": "2",
                "num_inference_steps": "4",
                "guidance_scale": "0",
                "scheduler": "K_EULER",
                "seed": "7",
                "disable_safety_checker": "true",
            },
        }

    async def test_every_input_is_a_string_even_without_optional_fields(
        self, api: respx.MockRouter, make_backend: MakeBackend
    ) -> None:
        api.get(PREDICTION).mock(return_value=success())
        await generate(make_backend, guidance_scale=1.5)
        fields = sent_input(api)
        assert all(isinstance(value, str) for value in fields.values())
        assert fields["guidance_scale"] == "1.5"
        assert fields["negative_prompt"] == ""

    async def test_the_older_x_api_key_header_is_an_option(
        self, api: respx.MockRouter, make_backend: MakeBackend
    ) -> None:
        poll = api.get(PREDICTION).mock(return_value=success())
        await generate(make_backend, options={"auth_scheme": "x-api-key"})
        for request in (api["create"].calls.last.request, poll.calls.last.request):
            assert request.headers["x-api-key"] == "k"
            assert "authorization" not in request.headers

    async def test_model_and_version_are_options(self, api: respx.MockRouter, make_backend: MakeBackend) -> None:
        api.get(PREDICTION).mock(return_value=success())
        await generate(make_backend, options={"model": "sdxl-lightning-8step", "version": "0.0.2"})
        body = orjson.loads(api["create"].calls.last.request.content)
        assert (body["model"], body["version"]) == ("sdxl-lightning-8step", "0.0.2")

    async def test_image_to_image_sends_a_data_uri_and_strength(
        self, api: respx.MockRouter, make_backend: MakeBackend, png: bytes
    ) -> None:
        api.get(PREDICTION).mock(return_value=success())
        await generate(make_backend, init_image=png, strength=0.5)
        fields = sent_input(api)
        prefix = "data:image/png;base64,"
        assert fields["image"].startswith(prefix)
        assert base64.b64decode(fields["image"][len(prefix) :]) == png
        assert fields["strength"] == "0.5"

    async def test_a_jpeg_source_is_labelled_jpeg(
        self, api: respx.MockRouter, make_backend: MakeBackend, jpeg: bytes
    ) -> None:
        api.get(PREDICTION).mock(return_value=success())
        await generate(make_backend, init_image=jpeg)
        assert sent_input(api)["image"].startswith("data:image/jpeg;base64,")

    @pytest.mark.parametrize(("strength", "sent"), [(0.0, "0.3"), (0.1, "0.3"), (0.8, "0.8"), (1.0, "0.8")])
    async def test_strength_is_clamped_to_their_range(
        self, api: respx.MockRouter, make_backend: MakeBackend, png: bytes, strength: float, sent: str
    ) -> None:
        api.get(PREDICTION).mock(return_value=success())
        await generate(make_backend, init_image=png, strength=strength)
        assert sent_input(api)["strength"] == sent

    async def test_image_field_names_are_options(
        self, api: respx.MockRouter, make_backend: MakeBackend, png: bytes
    ) -> None:
        api.get(PREDICTION).mock(return_value=success())
        await generate(
            make_backend, init_image=png, options={"image_field": "init_image", "strength_field": "prompt_strength"}
        )
        fields = sent_input(api)
        assert "image" not in fields and "strength" not in fields
        assert fields["init_image"].startswith("data:image/png;base64,")
        assert fields["prompt_strength"] == "0.6"

    async def test_text_to_image_sends_no_image_fields(self, api: respx.MockRouter, make_backend: MakeBackend) -> None:
        api.get(PREDICTION).mock(return_value=success())
        await generate(make_backend)
        assert not {"image", "strength"} & set(sent_input(api))

    def test_capabilities(self) -> None:
        capabilities = EACHLABS.capabilities
        assert capabilities.refusal(ImageRequest(prompt="a cat", n=4, steps=10, width=1280)) is None
        assert capabilities.refusal(ImageRequest(prompt="a cat", steps=11)) is not None
        assert capabilities.refusal(ImageRequest(prompt="a cat", width=1288)) is not None
        assert capabilities.refusal(ImageRequest(prompt="a cat", init_image=b"x")) is None
        assert capabilities.refusal(ImageRequest(prompt="a cat", n=4, seed=3, guidance_scale=1.0)) is None
        assert capabilities.output_formats == {"png"}

    def test_polls_at_the_pace_of_their_model_page(self) -> None:
        assert EACHLABS.job is not None and EACHLABS.job.poll_interval_s == 1.0


class TestLifecycle:
    async def test_succeeds_after_several_polls_with_one_url(
        self, api: respx.MockRouter, make_backend: MakeBackend, png: bytes
    ) -> None:
        poll = api.get(PREDICTION).mock(
            side_effect=[prediction("starting"), prediction("processing"), prediction("processing"), success()]
        )
        result = await generate(make_backend)
        assert poll.call_count == 4
        assert [image.data for image in result.images] == [png]
        assert result.run_seconds == pytest.approx(2.1)
        assert result.vendor_cost_usd == Decimal("0.0032")
        assert result.vendor_request_id == "p-1"
        assert not api["cancel"].called and not api["foreign_cancel"].called

    async def test_a_created_prediction_is_queued_not_a_surprise(
        self, api: respx.MockRouter, make_backend: MakeBackend
    ) -> None:
        """``created`` is their queued status: keep polling, never cancel and start again."""
        poll = api.get(PREDICTION).mock(side_effect=[prediction("created"), prediction("created"), success()])
        result = await generate(make_backend)
        assert poll.call_count == 3 and len(result.images) == 1
        assert api["create"].call_count == 1
        assert not api["cancel"].called

    async def test_a_list_of_urls_gives_every_image(self, api: respx.MockRouter, make_backend: MakeBackend) -> None:
        api.get(PREDICTION).mock(return_value=success([IMAGE_URL, IMAGE_URL_2]))
        result = await generate(make_backend, n=2)
        assert len(result.images) == 2
        assert all(image.format == "png" for image in result.images)

    async def test_no_metrics_means_no_run_time(self, api: respx.MockRouter, make_backend: MakeBackend) -> None:
        api.get(PREDICTION).mock(return_value=prediction("success", output=IMAGE_URL))
        result = await generate(make_backend)
        assert result.run_seconds is None and result.vendor_cost_usd is None

    async def test_an_errored_prediction_fails_over_with_its_code_and_what_it_billed(
        self, api: respx.MockRouter, make_backend: MakeBackend
    ) -> None:
        api.get(PREDICTION).mock(return_value=errored("PROVIDER_FAILED", "CUDA out of memory"))
        with pytest.raises(JobFailed) as caught:
            await generate(make_backend)
        error = caught.value
        assert error.vendor_code == "PROVIDER_FAILED"
        assert "CUDA out of memory" in error.message
        assert error.billed and error.vendor_cost_usd == Decimal("0.0031")
        assert error.run_seconds == pytest.approx(2.0)
        assert error.failover and not error.retryable
        assert api["create"].call_count == 1 and not api["cancel"].called

    async def test_an_error_the_vendor_settled_at_zero_is_not_billed(
        self, api: respx.MockRouter, make_backend: MakeBackend
    ) -> None:
        api.get(PREDICTION).mock(return_value=errored("INPUT_VALIDATION_ERROR", "bad input", cost=0))
        with pytest.raises(JobFailed) as caught:
            await generate(make_backend)
        assert not caught.value.billed

    @pytest.mark.parametrize("code", ["CONTENT_MODERATION", "CONTENT_FILTER", "content_moderation"])
    async def test_a_safety_refusal_is_content_filtered(
        self, api: respx.MockRouter, make_backend: MakeBackend, code: str
    ) -> None:
        api.get(PREDICTION).mock(return_value=errored(code, "flagged"))
        with pytest.raises(ContentFiltered) as caught:
            await generate(make_backend)
        assert caught.value.code == "content_policy_violation"
        assert caught.value.billed

    async def test_a_legacy_failed_status_that_ran_is_billed(
        self, api: respx.MockRouter, make_backend: MakeBackend
    ) -> None:
        api.get(PREDICTION).mock(return_value=prediction("failed", metrics={"predict_time": 1.5}))
        with pytest.raises(JobFailed) as caught:
            await generate(make_backend)
        assert caught.value.billed and caught.value.run_seconds == pytest.approx(1.5)

    @pytest.mark.parametrize("metrics", [None, {}, {"predict_time": 0}])
    async def test_a_failure_that_never_ran_is_not_billed(
        self, api: respx.MockRouter, make_backend: MakeBackend, metrics: Any
    ) -> None:
        api.get(PREDICTION).mock(return_value=prediction("error", metrics=metrics))
        with pytest.raises(JobFailed) as caught:
            await generate(make_backend)
        assert not caught.value.billed

    async def test_a_cancelled_prediction_is_a_failure(self, api: respx.MockRouter, make_backend: MakeBackend) -> None:
        api.get(PREDICTION).mock(return_value=prediction("cancelled", metrics={"predict_time": 0.4, "cost": 0}))
        with pytest.raises(JobFailed) as caught:
            await generate(make_backend)
        assert not caught.value.billed

    async def test_an_unknown_status_abandons_the_prediction_without_a_retry(
        self, api: respx.MockRouter, make_backend: MakeBackend
    ) -> None:
        api.get(PREDICTION).mock(return_value=prediction("queued_somewhere"))
        with pytest.raises(JobAbandoned, match="queued_somewhere") as caught:
            await generate(make_backend)
        assert not caught.value.retryable
        assert api["cancel"].called

    async def test_the_deadline_cancels_on_the_routes_own_host_whatever_cancel_url_it_was_given(
        self, api: respx.MockRouter, make_backend: MakeBackend
    ) -> None:
        urls = {"cancel": FOREIGN_CANCEL, "get": "https://api.eachlabs.test/x"}
        api.get(PREDICTION).mock(side_effect=lambda request: prediction(
            "cancelled", metrics={"predict_time": 0.4, "cost": 0}, urls=urls) if api["cancel"].called
            else prediction("processing", urls=urls))
        with pytest.raises(JobAbandoned) as caught:
            await generate(make_backend, timeout_s=0.05)
        assert api["cancel"].call_count == 1
        assert api["cancel"].calls.last.request.headers["authorization"] == "Bearer k"
        assert not api["foreign_cancel"].called  # the key never goes to another host
        assert not caught.value.billed  # it polls as cancelled at cost 0: a cancelled prediction never bills

    @pytest.mark.parametrize("after", [prediction("processing"), success()], ids=["running", "finished"])
    async def test_an_accepted_cancel_the_provider_could_not_honour_leaves_the_prediction_billed(
        self, api: respx.MockRouter, make_backend: MakeBackend, after: httpx.Response
    ) -> None:
        """Their OpenAPI (POST /v1/prediction/{id}/cancel): cancellation is best-effort for upstream
        providers, and the prediction "may still complete or fail" after a 200."""
        api["cancel"].respond(200, json={"status": "cancelled", "message": "Prediction canceled successfully",
                                         "predictionID": "p-1"})
        api.get(PREDICTION).mock(side_effect=lambda request: after if api["cancel"].called
                                 else prediction("processing"))
        with pytest.raises(JobAbandoned) as caught:
            await generate(make_backend, timeout_s=0.05)
        assert api["cancel"].call_count == 1
        assert caught.value.billed

    async def test_a_cancelled_task_cancels_the_prediction(
        self, api: respx.MockRouter, make_backend: MakeBackend
    ) -> None:
        poll = api.get(PREDICTION).mock(return_value=prediction("processing", urls={"cancel": FOREIGN_CANCEL}))
        backend = make_backend(EACHLABS)
        task = asyncio.create_task(backend.generate(ImageRequest(prompt="a cat"), Deadline(5)))
        async with asyncio.timeout(2):
            while not poll.called:
                await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert api["cancel"].call_count == 1
        assert not api["foreign_cancel"].called

    async def test_a_prediction_flagged_nsfw_is_content_filtered(
        self, api: respx.MockRouter, make_backend: MakeBackend
    ) -> None:
        api.get(PREDICTION).mock(return_value=success(nsfw_content_detected=[True]))
        with pytest.raises(ContentFiltered):
            await generate(make_backend)


class TestMalformed:
    @pytest.mark.parametrize(
        "body",
        [
            {"status": "error", "message": "model busy", "predictionID": "p-1"},
            {"status": "success", "message": "Prediction created"},
            {"status": "success", "predictionID": 12},
            {"predictionID": "p-1"},
        ],
    )
    async def test_a_create_answer_that_did_not_accept(
        self, vendor_api: respx.MockRouter, make_backend: MakeBackend, body: dict[str, Any]
    ) -> None:
        vendor_api.post(CREATE).respond(200, json=body)
        with pytest.raises(UnusableOutput):
            await generate(make_backend)

    @pytest.mark.parametrize("output", [None, "", [], 42, [IMAGE_URL, 7], "not a url", {"url": IMAGE_URL}])
    async def test_an_output_that_is_not_urls_is_billed_and_not_retried(
        self, api: respx.MockRouter, make_backend: MakeBackend, output: Any
    ) -> None:
        api.get(PREDICTION).mock(return_value=success(output))
        with pytest.raises(UnusableOutput) as caught:
            await generate(make_backend)
        assert caught.value.billed and caught.value.vendor_cost_usd == Decimal("0.0032")

    async def test_an_expired_output_url(self, api: respx.MockRouter, make_backend: MakeBackend) -> None:
        api.get(PREDICTION).mock(return_value=success())
        api["image"].respond(404)
        with pytest.raises(UnusableOutput, match="404") as caught:
            await generate(make_backend)
        assert caught.value.billed and not caught.value.retryable

    async def test_a_poll_that_is_not_json_abandons_the_prediction(
        self, api: respx.MockRouter, make_backend: MakeBackend
    ) -> None:
        api.get(PREDICTION).respond(200, content=b"<html>gateway</html>")
        with pytest.raises(JobAbandoned):
            await generate(make_backend)
        assert api["cancel"].called


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (400, {"error": "Invalid input for model"}, VendorRejectedRequest),
        (401, {"error": "Invalid or missing API key"}, VendorAuthError),
        (402, {"status": 402, "error": "payment required", "details": "wait for an active execution"},
         VendorOutOfCredit),
        (429, {"status": 429, "error": "too many requests", "details": "10 concurrent executions"}, VendorRateLimited),
        (500, {"error": "Failed to create prediction"}, VendorUnavailable),
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
    message = body["error"]
    with pytest.raises(kind) as caught:
        await generate(make_backend)
    assert type(caught.value) is kind
    assert caught.value.status == status
    assert caught.value.vendor_code is None
    assert message in caught.value.message
    if "details" in body:
        assert body["details"] in caught.value.message
