"""Runflow: create a run, poll it, fetch its JPEG URLs. No public cancel: an abandoned run is paid for."""

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
    AmbiguousCreate,
    BackendError,
    ContentFiltered,
    JobAbandoned,
    JobFailed,
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

CREATE = "/v1/models/bytedance/sd-xl-lightning/runs"
RUN = "/v1/runs/run-1"
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
    # Runflow publishes no cancel: an adapter that calls one calls an endpoint that does not exist.
    vendor_api.route(url__regex=r"cancel", name="cancel").respond(404, json={"code": "NOT_FOUND"})
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
        sent = orjson.loads(request.content)
        assert len(sent.pop("client_ref")) == 32  # the request's key: its run can be found again
        assert sent == {
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

    def test_polls_every_2_s_as_their_sdk_does_and_publishes_no_cancel(self) -> None:
        assert RUNFLOW.job is not None
        assert RUNFLOW.job.poll_interval_s == 2.0
        assert RUNFLOW.job.cancel is None

    async def test_can_ask_for_signed_output_urls(self, api: respx.MockRouter, make_backend: MakeBackend) -> None:
        poll = api.get(RUN).mock(return_value=succeeded())
        await generate(make_backend, options={"add_signature": "true"})
        assert poll.calls.last.request.url.params["add_signature"] == "true"


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

    async def test_a_failed_run_without_a_cost_is_counted_as_billed(
        self, api: respx.MockRouter, make_backend: MakeBackend
    ) -> None:
        api.get(RUN).mock(return_value=run("failed", failure_code="INVALID_INPUT"))
        with pytest.raises(JobFailed) as caught:
            await generate(make_backend)
        assert caught.value.billed

    async def test_the_sdks_error_object_names_a_failure(
        self, api: respx.MockRouter, make_backend: MakeBackend
    ) -> None:
        api.get(RUN).mock(return_value=run("failed", error={"code": "OOM", "message": "out of memory"}, cost="0"))
        with pytest.raises(JobFailed, match="out of memory") as caught:
            await generate(make_backend)
        assert caught.value.vendor_code == "OOM"

    async def test_their_errors_page_spelling_status_is_read(
        self, api: respx.MockRouter, make_backend: MakeBackend
    ) -> None:
        api.get(RUN).respond(200, json={"id": "run-1", "status": "failed", "failure_code": "INPUT_VALIDATION_FAILED",
                                        "failure_stage": "preprocess", "failure_message": "too big"})
        with pytest.raises(JobFailed, match="too big"):
            await generate(make_backend)

    @pytest.mark.parametrize("cost", ["0", "0.000"])
    async def test_a_failed_run_that_cost_nothing_is_not_billed(
        self, api: respx.MockRouter, make_backend: MakeBackend, cost: str | None
    ) -> None:
        api.get(RUN).mock(return_value=run("failed", failure_code="INVALID_INPUT", cost=cost))
        with pytest.raises(JobFailed) as caught:
            await generate(make_backend)
        assert not caught.value.billed

    @pytest.mark.parametrize("status", ["canceled", "cancelled", "errored"])
    async def test_a_run_cancelled_elsewhere_is_a_failure(
        self, api: respx.MockRouter, make_backend: MakeBackend, status: str
    ) -> None:
        api.get(RUN).mock(return_value=run(status))
        with pytest.raises(JobFailed) as caught:
            await generate(make_backend)
        assert caught.value.vendor_code == status

    async def test_an_unknown_status_abandons_the_run_which_is_then_paid_for(
        self, api: respx.MockRouter, make_backend: MakeBackend
    ) -> None:
        api.get(RUN).mock(return_value=run("hibernating"))
        with pytest.raises(JobAbandoned, match="hibernating") as caught:
            await generate(make_backend)
        assert caught.value.billed and not caught.value.retryable
        assert not api["cancel"].called

    async def test_the_deadline_abandons_the_run_without_calling_an_unpublished_cancel(
        self, api: respx.MockRouter, make_backend: MakeBackend
    ) -> None:
        poll = api.get(RUN).mock(return_value=run("queued"))
        with pytest.raises(JobAbandoned) as caught:
            await generate(make_backend, timeout_s=0.05)
        assert poll.called
        assert not api["cancel"].called
        assert caught.value.billed  # the run goes on and Runflow bills it: a gateway loss

    async def test_a_cancelled_task_leaves_a_billed_run_behind(
        self, api: respx.MockRouter, make_backend: MakeBackend
    ) -> None:
        poll = api.get(RUN).mock(return_value=run("running"))
        backend = make_backend(RUNFLOW)
        task = asyncio.create_task(backend.generate(ImageRequest(prompt="a cat"), Deadline(5)))
        async with asyncio.timeout(2):
            while not poll.called:
                await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as caught:
            await task
        assert not api["cancel"].called
        left_behind = caught.value.__cause__
        assert isinstance(left_behind, JobAbandoned) and left_behind.billed

    @pytest.mark.parametrize("status", [500, 503, 429])
    async def test_a_transient_poll_error_keeps_polling_the_same_run(
        self, api: respx.MockRouter, make_backend: MakeBackend, status: int
    ) -> None:
        api.get(RUN).mock(side_effect=[run("running"), httpx.Response(status, json={"code": "X", "message": "y"}),
                                       succeeded()])
        result = await generate(make_backend)
        assert len(result.images) == 1
        assert api["create"].call_count == 1

    async def test_a_vanished_run_is_abandoned(self, api: respx.MockRouter, make_backend: MakeBackend) -> None:
        api.get(RUN).respond(404, json={"code": "RUN_NOT_FOUND", "message": "no such run"})
        with pytest.raises(JobAbandoned, match="RUN_NOT_FOUND") as caught:
            await generate(make_backend)
        assert isinstance(caught.value.__cause__, VendorNotFound)

    async def test_a_run_flagged_nsfw_is_content_filtered(
        self, api: respx.MockRouter, make_backend: MakeBackend
    ) -> None:
        api.get(RUN).mock(
            return_value=run("succeeded", output={"image_urls": [IMAGE_URL], "nsfw_content_detected": [True]})
        )
        with pytest.raises(ContentFiltered) as caught:
            await generate(make_backend)
        assert caught.value.billed


class TestOutputShapes:
    """Every output shape Runflow's official SDK reads (its ``tools/outputs.ts``)."""

    @pytest.mark.parametrize(
        "output",
        [
            {"image_urls": [IMAGE_URL]},
            {"outputs": [{"url": IMAGE_URL}]},
            {"image": {"url": IMAGE_URL}},
            {"url": IMAGE_URL},
            {"output_url": IMAGE_URL},
        ],
        ids=["image_urls", "outputs", "image", "url", "output_url"],
    )
    async def test_each_documented_shape_is_read(
        self, api: respx.MockRouter, make_backend: MakeBackend, output: dict[str, Any]
    ) -> None:
        api.get(RUN).mock(return_value=run("succeeded", output=output, cost="0.003"))
        result = await generate(make_backend)
        assert len(result.images) == 1

    @pytest.mark.parametrize(
        "output",
        [None, {}, {"image_urls": []}, {"image_urls": "https://a/b.jpg"}, {"image_urls": [1]},
         {"images": [IMAGE_URL]}, {"outputs": [{"href": IMAGE_URL}]}],
    )
    async def test_an_unknown_shape_is_billed_and_fails_over_without_a_new_run(
        self, api: respx.MockRouter, make_backend: MakeBackend, output: Any
    ) -> None:
        api.get(RUN).mock(return_value=run("succeeded", output=output, cost="0.003"))
        with pytest.raises(UnusableOutput) as caught:
            await generate(make_backend)
        assert caught.value.billed and not caught.value.retryable
        assert caught.value.vendor_cost_usd == Decimal("0.003")


class TestMalformed:
    @pytest.mark.parametrize("body", [b"<html>busy</html>", b'{"status_code": "queued"}', b'{"id": 7}', b"[]"])
    async def test_a_create_answer_without_a_run_id(
        self, vendor_api: respx.MockRouter, make_backend: MakeBackend, body: bytes
    ) -> None:
        vendor_api.post(CREATE).respond(201, content=body)
        with pytest.raises(UnusableOutput):
            await generate(make_backend)

    async def test_a_run_without_status(self, api: respx.MockRouter, make_backend: MakeBackend) -> None:
        api.get(RUN).respond(200, json={"id": "run-1"})
        with pytest.raises(JobAbandoned):
            await generate(make_backend)

    async def test_an_expired_output_url(self, api: respx.MockRouter, make_backend: MakeBackend) -> None:
        api.get(RUN).mock(return_value=succeeded())
        api["image"].respond(404, content=b"expired")
        with pytest.raises(UnusableOutput, match="404") as caught:
            await generate(make_backend)
        assert caught.value.billed

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
        (402, {"code": "INSUFFICIENT_CREDIT", "message": "top up"}, VendorOutOfCredit),
        (403, {"code": "PERMISSION_DENIED", "message": "not yours"}, VendorAuthError),
        (404, {"code": "MODEL_NOT_FOUND", "message": "no model"}, VendorNotFound),
        (409, {"code": "CONFLICT", "message": "refetch and retry"}, VendorUnavailable),
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
        (500, {"code": "INTERNAL", "message": "oops"}, AmbiguousCreate),  # a create's 5xx: maybe queued
        (503, {"code": "MODEL_UNAVAILABLE", "message": "warming up"}, AmbiguousCreate),
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
    vendor_api.get("/v1/runs").respond(200, json={"items": []})  # a 5xx's run is searched for: none
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


async def test_a_409_is_retried_as_runflow_advises(vendor_api: respx.MockRouter, make_backend: MakeBackend) -> None:
    """Their Errors page: 409 "usually a duplicate create or a race. Refetch and retry"."""
    vendor_api.post(CREATE).respond(409, json={"code": "CONFLICT", "message": "race"})
    with pytest.raises(VendorUnavailable) as caught:
        await generate(make_backend)
    assert caught.value.retryable


@pytest.mark.parametrize(("headers", "wait"), [({"Retry-After": "3"}, 3.0), ({}, None)])
async def test_rate_limits_carry_their_retry_after_when_sent(
    vendor_api: respx.MockRouter, make_backend: MakeBackend, headers: dict[str, str], wait: float | None
) -> None:
    vendor_api.post(CREATE).respond(429, json={"code": "RATE_LIMITED", "message": "slow down"}, headers=headers)
    with pytest.raises(VendorRateLimited) as caught:
        await generate(make_backend)
    assert caught.value.retry_after == wait


class TestLostCreate:
    """A create whose answer is lost may be a queued, billed run: it is searched for by its
    ``client_ref``, never created again."""

    @staticmethod
    def search(ref_of: Callable[[], str], *, matching: bool = True) -> Callable[[httpx.Request], httpx.Response]:
        def answer(request: httpx.Request) -> httpx.Response:
            ref = ref_of() if matching else "someone-elses-run"
            return httpx.Response(200, json={"items": [{"id": "run-1", "client_ref": ref, "status_code": "queued"}],
                                             "next_pq": None, "prev_pq": None})
        return answer

    async def test_the_run_is_found_by_its_client_ref_and_followed(
        self, vendor_api: respx.MockRouter, make_backend: MakeBackend, jpeg: bytes
    ) -> None:
        create = vendor_api.post(CREATE).mock(side_effect=httpx.ReadError("connection reset"))

        def ref() -> str:
            return str(orjson.loads(create.calls.last.request.content)["client_ref"])

        search = vendor_api.get("/v1/runs").mock(side_effect=self.search(ref))
        vendor_api.get(RUN).mock(return_value=succeeded())
        vendor_api.get(IMAGE_URL).respond(200, content=jpeg)

        result = await generate(make_backend)

        assert result.vendor_request_id == "run-1" and len(result.images) == 1
        assert create.call_count == 1
        assert search.calls.last.request.url.params["q"] == f"client_ref:{ref()}"

    @pytest.mark.parametrize("found", ["someone else's run", "no search"])
    async def test_without_our_run_in_the_answer_the_create_stays_ambiguous(
        self, vendor_api: respx.MockRouter, make_backend: MakeBackend, found: str
    ) -> None:
        create = vendor_api.post(CREATE).mock(side_effect=httpx.ReadError("connection reset"))
        if found == "no search":
            vendor_api.get("/v1/runs").respond(500, json={"code": "INTERNAL", "message": "oops"})
        else:  # a search that ignored its filter answers other runs: none of them is ours
            vendor_api.get("/v1/runs").mock(side_effect=self.search(lambda: "", matching=False))

        with pytest.raises(AmbiguousCreate):
            await generate(make_backend)
        assert create.call_count == 1
