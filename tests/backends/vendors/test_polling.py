"""The one polling loop, driven by a made-up job vendor so each rule is seen on its own."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx

from backends.base import Capabilities
from backends.vendors.backend import VendorBackend
from backends.vendors.messages import HttpAnswer, HttpCall, VendorOutput, require
from backends.vendors.openai_style import openai_error_fields
from backends.vendors.spec import JobProtocol, JobState, Options, VendorFacts, VendorSpec
from core.deadline import Deadline
from core.errors import ContentFiltered, JobAbandoned, JobFailed, UnusableOutput, VendorProtocolError
from core.request import ImageRequest

MakeBackend = Callable[..., VendorBackend]

IMAGE_URL = "https://files.jobs.test/1.png"
DOCUMENTED_PACE_S = 0.25


def read_state(answer: HttpAnswer) -> JobState:
    body = answer.json()
    state = require(body, "state", str, "job")
    if state == "done":
        output = VendorOutput(image_urls=[IMAGE_URL], vendor_request_id=body.get("request_id"))
        return JobState("succeeded", output=output)
    if state == "done-empty":
        return JobState("succeeded")
    if state in ("failed", "refused"):
        return JobState("failed", failure_code="E1", failure_message="broke", billed=True, run_seconds=1.5,
                        vendor_cost_usd=Decimal("0.002"), content_filtered=state == "refused")
    if state == "pending":
        return JobState("pending")
    if state == "cancelled":
        return JobState("failed", failure_code="cancelled", billed=False)
    if state == "done-garbled":
        raise UnusableOutput("the job succeeded with output of no known shape")
    raise VendorProtocolError(f"unknown state {state}")


def cancel(job_id: str, options: Options) -> HttpCall:
    return HttpCall("POST", f"/jobs/{job_id}/cancel")


PROTOCOL = JobProtocol(
    job_id=lambda answer: str(require(answer.json(), "id", str, "job")),
    poll=lambda job_id, options: HttpCall("GET", f"/jobs/{job_id}"),
    read_state=read_state,
    cancel=cancel,
    poll_interval_s=DOCUMENTED_PACE_S,
    cancel_stops_billing=True,
)
JOBS = VendorSpec(
    name="jobs",
    capabilities=Capabilities(),
    build_request=lambda request, options: HttpCall("POST", "/jobs", {"prompt": request.prompt}),
    error_fields=openai_error_fields,
    facts=VendorFacts(default_base_url=None, key_env="JOBS_API_KEY", price_key="jobs"),
    job=PROTOCOL,
)
UNCANCELLABLE = dataclasses.replace(JOBS, job=dataclasses.replace(PROTOCOL, cancel=None))


BRIEF_S = 0.3
"""A vendor attempt's budget in the tests where it must run out while the job is pending: long
enough that a loaded machine still creates the job within it (at 30 ms, a CI-like load let it run
out before the create was sent); a poll or two at the documented pace fit in it."""

def job(state: str, **fields: Any) -> httpx.Response:
    return httpx.Response(200, json={"state": state, **fields})


@pytest.fixture
def api(vendor_api: respx.MockRouter, png: bytes) -> respx.MockRouter:
    vendor_api.post("/jobs", name="create").respond(200, json={"id": "j1"})
    vendor_api.post("/jobs/j1/cancel", name="cancel").respond(200)
    vendor_api.get(IMAGE_URL).respond(200, content=png)
    return vendor_api


async def generate(make_backend: MakeBackend, spec: VendorSpec = JOBS, **settings: Any) -> Any:
    backend = make_backend(spec, **settings)
    return await backend.generate(ImageRequest(prompt="a cat"), Deadline(5))


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The loop's sleeps, recorded and skipped (the clock is not what is under test)."""
    recorded: list[float] = []
    real_sleep = asyncio.sleep

    async def recording_sleep(seconds: float) -> None:
        recorded.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", recording_sleep)
    return recorded


async def test_polls_until_done_and_names_the_job(api: respx.MockRouter, make_backend: MakeBackend) -> None:
    poll = api.get("/jobs/j1").mock(side_effect=[job("pending"), job("pending"), job("done")])
    result = await generate(make_backend)
    assert poll.call_count == 3
    assert len(result.images) == 1
    assert result.vendor_request_id == "j1"
    assert not api["cancel"].called


async def test_keeps_the_vendors_own_request_id(api: respx.MockRouter, make_backend: MakeBackend) -> None:
    api.get("/jobs/j1").mock(return_value=job("done", request_id="req-9"))
    assert (await generate(make_backend)).vendor_request_id == "req-9"


async def test_polls_at_the_vendors_documented_pace(
    api: respx.MockRouter, make_backend: MakeBackend, waits: list[float]
) -> None:
    api.get("/jobs/j1").mock(side_effect=[job("pending")] * 3 + [job("done")])
    await generate(make_backend, poll_interval_s=None)
    assert waits[:3] == [DOCUMENTED_PACE_S] * 3


async def test_a_route_may_set_its_own_pace(api: respx.MockRouter, make_backend: MakeBackend,
                                            waits: list[float]) -> None:
    api.get("/jobs/j1").mock(side_effect=[job("pending")] * 3 + [job("done")])
    await generate(make_backend, poll_interval_s=0.04)
    assert waits[:3] == [0.04] * 3


@pytest.mark.parametrize(
    "transient",
    [httpx.Response(503), httpx.Response(502), httpx.Response(429), httpx.ConnectError("refused")],
    ids=["503", "502", "429", "connect"],
)
async def test_a_transient_poll_failure_keeps_polling_the_same_job(
    api: respx.MockRouter, make_backend: MakeBackend, transient: httpx.Response | Exception
) -> None:
    """One bad poll never abandons a running, billed job for a new one."""
    poll = api.get("/jobs/j1").mock(side_effect=[job("pending"), transient, transient, job("done")])
    result = await generate(make_backend)
    assert len(result.images) == 1
    assert poll.call_count == 4
    assert api["create"].call_count == 1
    assert not api["cancel"].called


async def test_transient_poll_failures_back_off_then_the_pace_resumes(
    api: respx.MockRouter, make_backend: MakeBackend, waits: list[float]
) -> None:
    failures = [httpx.Response(503)] * 5
    api.get("/jobs/j1").mock(side_effect=[*failures, job("pending"), job("done")])
    await generate(make_backend, poll_interval_s=0.01)
    assert waits == pytest.approx([0.02, 0.04, 0.08, 0.08, 0.08, 0.01])


async def test_a_rate_limited_poll_waits_as_long_as_the_vendor_asks(
    api: respx.MockRouter, make_backend: MakeBackend, waits: list[float]
) -> None:
    api.get("/jobs/j1").mock(side_effect=[httpx.Response(429, headers={"Retry-After": "0.5"}), job("done")])
    await generate(make_backend, poll_interval_s=0.01)
    assert waits == [0.5]


async def test_polls_failing_until_the_deadline_abandon_the_job(
    api: respx.MockRouter, make_backend: MakeBackend
) -> None:
    api.get("/jobs/j1").mock(return_value=httpx.Response(503))
    with pytest.raises(JobAbandoned):
        await generate(make_backend, timeout_s=BRIEF_S)
    assert api["create"].call_count == 1
    assert api["cancel"].call_count == 1


async def test_a_failed_job_carries_what_it_cost_and_is_not_cancelled(
    api: respx.MockRouter, make_backend: MakeBackend
) -> None:
    api.get("/jobs/j1").mock(return_value=job("failed"))
    with pytest.raises(JobFailed) as caught:
        await generate(make_backend)
    error = caught.value
    assert (error.billed, error.vendor_code) == (True, "E1")
    assert (error.run_seconds, error.vendor_cost_usd) == (1.5, Decimal("0.002"))
    assert "E1 broke" in error.message
    assert error.failover and not error.retryable
    assert not api["cancel"].called


async def test_a_job_the_vendors_safety_checker_refused_is_content_filtered_and_billed(
    api: respx.MockRouter, make_backend: MakeBackend
) -> None:
    api.get("/jobs/j1").mock(return_value=job("refused"))
    with pytest.raises(ContentFiltered) as caught:
        await generate(make_backend)
    assert caught.value.billed and caught.value.vendor_cost_usd == Decimal("0.002")


def pending_until_cancelled(api: respx.MockRouter, after: str = "cancelled") -> respx.Route:
    """The job polls as pending until its cancel is called, then as ``after``."""
    return api.get("/jobs/j1").mock(side_effect=lambda request: job(after if api["cancel"].called else "pending"))


async def test_the_deadline_cancels_the_job_and_a_cancelled_job_is_not_billed(
    api: respx.MockRouter, make_backend: MakeBackend
) -> None:
    pending_until_cancelled(api)
    with pytest.raises(JobAbandoned) as caught:
        await generate(make_backend, timeout_s=BRIEF_S)
    assert not caught.value.retryable and caught.value.failover
    assert not caught.value.billed
    assert api["cancel"].call_count == 1


@pytest.mark.parametrize("after", ["pending", "done", "failed"])
async def test_an_accepted_cancel_that_did_not_stop_the_job_leaves_it_billed(
    api: respx.MockRouter, make_backend: MakeBackend, after: str
) -> None:
    """A cancel's 2xx is not proof (Eachlabs: cancellation is best-effort, the prediction "may still
    complete or fail"): a job that, read after it, runs on, finished, or failed billed is a loss."""
    poll = pending_until_cancelled(api, after)
    with pytest.raises(JobAbandoned) as caught:
        await generate(make_backend, timeout_s=BRIEF_S)
    assert caught.value.billed
    assert api["cancel"].call_count == 1
    assert poll.calls.last.request.url.path == "/jobs/j1"  # read once more, after the cancel


@pytest.mark.parametrize("failure", [httpx.Response(500), httpx.ConnectError("refused"), job("exploded")])
async def test_a_job_that_cannot_be_read_after_its_cancel_is_booked_as_billed(
    api: respx.MockRouter, make_backend: MakeBackend, failure: httpx.Response | Exception
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if not api["cancel"].called:
            return job("pending")
        if isinstance(failure, Exception):
            raise failure
        return failure

    api.get("/jobs/j1").mock(side_effect=answer)
    with pytest.raises(JobAbandoned) as caught:
        await generate(make_backend, timeout_s=BRIEF_S)
    assert caught.value.billed


@pytest.mark.parametrize("failure", [httpx.Response(500), httpx.Response(404), httpx.ConnectError("refused")])
async def test_a_cancel_that_fails_leaves_a_billed_job_and_says_so(
    api: respx.MockRouter,
    make_backend: MakeBackend,
    caplog: pytest.LogCaptureFixture,
    failure: httpx.Response | Exception,
) -> None:
    api.get("/jobs/j1").mock(return_value=job("pending"))
    api["cancel"].mock(side_effect=[failure])
    with caplog.at_level(logging.INFO), pytest.raises(JobAbandoned) as caught:
        await generate(make_backend, timeout_s=BRIEF_S)
    assert caught.value.billed
    assert "cancelled jobs job" not in caplog.text  # never logged as cancelled when it was not
    assert "j1" in caplog.text


async def test_a_vendor_without_cancel_leaves_a_billed_job_and_calls_nothing(
    api: respx.MockRouter, make_backend: MakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    api.get("/jobs/j1").mock(return_value=job("pending"))
    with caplog.at_level(logging.WARNING), pytest.raises(JobAbandoned) as caught:
        await generate(make_backend, UNCANCELLABLE, timeout_s=BRIEF_S)
    assert caught.value.billed
    assert not api["cancel"].called
    assert "publishes no cancel" in caplog.text


async def test_a_poll_still_in_flight_when_the_budget_runs_out_abandons_the_job(
    api: respx.MockRouter, make_backend: MakeBackend
) -> None:
    """Not a retryable timeout: retrying would start the same stuck job again."""

    async def slow_poll(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.1)  # the whole budget goes by while this poll is in flight
        raise httpx.ReadTimeout("slow poll", request=request)

    api.get("/jobs/j1").mock(side_effect=slow_poll)
    with pytest.raises(JobAbandoned) as caught:
        await generate(make_backend, timeout_s=BRIEF_S)
    assert not caught.value.retryable and caught.value.failover
    assert api["cancel"].call_count == 1


async def test_an_unreadable_poll_abandons_the_job_without_a_retry(
    api: respx.MockRouter, make_backend: MakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    api.get("/jobs/j1").mock(return_value=job("exploded"))
    with caplog.at_level(logging.WARNING), pytest.raises(JobAbandoned) as caught:
        await generate(make_backend)
    assert not caught.value.retryable
    assert "exploded" in caplog.text
    assert api["cancel"].called


async def test_a_success_whose_output_cannot_be_used_is_billed_and_not_retried(
    api: respx.MockRouter, make_backend: MakeBackend
) -> None:
    api.get("/jobs/j1").mock(return_value=job("done-garbled"))
    with pytest.raises(UnusableOutput) as caught:
        await generate(make_backend)
    assert caught.value.billed and not caught.value.retryable
    assert not api["cancel"].called


async def test_a_success_without_output_is_unusable(api: respx.MockRouter, make_backend: MakeBackend) -> None:
    api.get("/jobs/j1").mock(return_value=job("done-empty"))
    with pytest.raises(UnusableOutput, match="without output"):
        await generate(make_backend)


@pytest.mark.parametrize("body", [{"job": "j1"}, {"id": "../admin"}, {"id": "j1/cancel"}])
async def test_a_created_job_we_cannot_track_is_billed_polls_nothing_and_is_not_retried(
    vendor_api: respx.MockRouter, make_backend: MakeBackend, body: dict[str, str]
) -> None:
    vendor_api.post("/jobs").respond(200, json=body)
    poll = vendor_api.get(url__regex=r"/jobs/.*")
    cancel_route = vendor_api.post(url__regex=r"/jobs/.+")
    with pytest.raises(UnusableOutput) as caught:
        await generate(make_backend)
    assert caught.value.billed and not caught.value.retryable
    assert not poll.called and not cancel_route.called


async def test_a_cancelled_task_cancels_the_job_and_says_what_it_left_behind(
    api: respx.MockRouter, make_backend: MakeBackend
) -> None:
    poll = api.get("/jobs/j1").mock(return_value=job("pending"))
    task = asyncio.create_task(generate(make_backend, UNCANCELLABLE))
    async with asyncio.timeout(2):
        while not poll.called:
            await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError) as caught:
        await task
    left_behind = caught.value.__cause__
    assert isinstance(left_behind, JobAbandoned) and left_behind.billed


async def test_a_cancelled_task_cancels_a_cancellable_job_once(
    api: respx.MockRouter, make_backend: MakeBackend
) -> None:
    poll = api.get("/jobs/j1").mock(return_value=job("pending"))
    task = asyncio.create_task(generate(make_backend))
    async with asyncio.timeout(2):
        while not poll.called:
            await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert api["cancel"].call_count == 1
