"""The one polling loop, driven by a made-up job vendor so each rule is seen on its own."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx

from backends.base import Capabilities
from backends.vendors import polling
from backends.vendors.backend import VendorBackend
from backends.vendors.messages import HttpAnswer, HttpCall, VendorOutput, require
from backends.vendors.openai_style import openai_error_fields
from backends.vendors.spec import JobProtocol, JobState, Options, VendorSpec
from core.deadline import Deadline
from core.errors import JobAbandoned, JobFailed, VendorProtocolError, VendorUnavailable
from core.request import ImageRequest

MakeBackend = Callable[..., VendorBackend]

IMAGE_URL = "https://files.jobs.test/1.png"


def read_state(answer: HttpAnswer) -> JobState:
    body = answer.json()
    state = require(body, "state", str, "job")
    if state == "done":
        output = VendorOutput(image_urls=[IMAGE_URL], vendor_request_id=body.get("request_id"))
        return JobState("succeeded", output=output)
    if state == "done-empty":
        return JobState("succeeded")
    if state == "failed":
        return JobState(
            "failed",
            failure_code="E1",
            failure_message="broke",
            billed=True,
            run_seconds=1.5,
            vendor_cost_usd=Decimal("0.002"),
        )
    if state == "pending":
        return JobState("pending")
    raise VendorProtocolError(f"unknown state {state}")


def cancel(job_id: str, latest: HttpAnswer, options: Options) -> HttpCall | None:
    if options.get("cancel") == "none":
        return None
    ticket = latest.json().get("ticket", "none")
    return HttpCall("POST", f"/jobs/{job_id}/cancel?ticket={ticket}")


JOBS = VendorSpec(
    name="jobs",
    capabilities=Capabilities(),
    build_request=lambda request, options: HttpCall("POST", "/jobs", {"prompt": request.prompt}),
    error_fields=openai_error_fields,
    job=JobProtocol(
        job_id=lambda answer: str(require(answer.json(), "id", str, "job")),
        poll=lambda job_id, options: HttpCall("GET", f"/jobs/{job_id}"),
        read_state=read_state,
        cancel=cancel,
    ),
)


def job(state: str, **fields: Any) -> httpx.Response:
    return httpx.Response(200, json={"state": state, **fields})


@pytest.fixture
def api(vendor_api: respx.MockRouter, png: bytes) -> respx.MockRouter:
    vendor_api.post("/jobs", name="create").respond(200, json={"id": "j1", "ticket": "t0"})
    vendor_api.post("/jobs/j1/cancel", name="cancel").respond(200)
    vendor_api.get(IMAGE_URL).respond(200, content=png)
    return vendor_api


async def generate(make_backend: MakeBackend, *, timeout_s: float = 5.0, options: Options | None = None) -> Any:
    backend = make_backend(JOBS, timeout_s=timeout_s, options=options)
    return await backend.generate(ImageRequest(prompt="a cat"), Deadline(5))


def cancel_ticket(api: respx.MockRouter) -> str | None:
    ticket: str | None = api["cancel"].calls.last.request.url.params.get("ticket")
    return ticket


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


async def test_the_interval_backs_off_up_to_its_ceiling(
    api: respx.MockRouter, make_backend: MakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(polling, "FIRST_INTERVAL_S", 0.001)
    monkeypatch.setattr(polling, "MAX_INTERVAL_S", 0.003)
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def recording_sleep(seconds: float) -> None:
        waits.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", recording_sleep)
    api.get("/jobs/j1").mock(side_effect=[job("pending")] * 5 + [job("done")])
    await generate(make_backend)
    assert waits[:6] == pytest.approx([0.001, 0.0015, 0.00225, 0.003, 0.003, 0.003])


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


async def test_the_deadline_abandons_the_job_and_cancels_it_with_the_latest_answer(
    api: respx.MockRouter, make_backend: MakeBackend
) -> None:
    api.get("/jobs/j1").mock(return_value=job("pending", ticket="t-latest"))
    with pytest.raises(JobAbandoned) as caught:
        await generate(make_backend, timeout_s=0.03)
    assert not caught.value.retryable and caught.value.failover
    assert api["cancel"].call_count == 1
    assert cancel_ticket(api) == "t-latest"


async def test_a_deadline_before_the_first_poll_cancels_with_the_create_answer(
    api: respx.MockRouter, make_backend: MakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(polling, "FIRST_INTERVAL_S", 1.0)
    poll = api.get("/jobs/j1").mock(return_value=job("pending"))
    with pytest.raises(JobAbandoned):
        await generate(make_backend, timeout_s=0.02)
    assert not poll.called
    assert cancel_ticket(api) == "t0"


async def test_a_poll_still_in_flight_when_the_budget_runs_out_abandons_the_job(
    api: respx.MockRouter, make_backend: MakeBackend
) -> None:
    """Not a retryable timeout: retrying would start the same stuck job again."""
    api.get("/jobs/j1").mock(side_effect=[job("pending", ticket="t1"), httpx.ReadTimeout("slow poll")])
    with pytest.raises(JobAbandoned) as caught:
        await generate(make_backend)
    assert not caught.value.retryable and caught.value.failover
    assert cancel_ticket(api) == "t1"


async def test_a_vendor_without_cancel_is_simply_abandoned(api: respx.MockRouter, make_backend: MakeBackend) -> None:
    api.get("/jobs/j1").mock(return_value=job("pending"))
    with pytest.raises(JobAbandoned):
        await generate(make_backend, timeout_s=0.02, options={"cancel": "none"})
    assert not api["cancel"].called


@pytest.mark.parametrize("failure", [httpx.Response(500), httpx.ConnectError("refused")])
async def test_a_cancel_that_fails_is_logged_and_the_job_still_abandoned(
    api: respx.MockRouter,
    make_backend: MakeBackend,
    caplog: pytest.LogCaptureFixture,
    failure: httpx.Response | Exception,
) -> None:
    api.get("/jobs/j1").mock(return_value=job("pending"))
    api["cancel"].mock(side_effect=[failure])
    with caplog.at_level(logging.INFO), pytest.raises(JobAbandoned):
        await generate(make_backend, timeout_s=0.02)
    assert api["cancel"].called
    assert "j1" in caplog.text


async def test_a_failing_poll_cancels_the_job(api: respx.MockRouter, make_backend: MakeBackend) -> None:
    api.get("/jobs/j1").mock(side_effect=[job("pending", ticket="t1"), httpx.Response(503)])
    with pytest.raises(VendorUnavailable):
        await generate(make_backend)
    assert cancel_ticket(api) == "t1"


async def test_an_unreadable_poll_is_logged_and_the_job_cancelled(
    api: respx.MockRouter, make_backend: MakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    api.get("/jobs/j1").mock(return_value=job("exploded"))
    with caplog.at_level(logging.WARNING), pytest.raises(VendorProtocolError):
        await generate(make_backend)
    assert "exploded" in caplog.text
    assert api["cancel"].called


async def test_a_success_without_output_is_a_protocol_error(api: respx.MockRouter, make_backend: MakeBackend) -> None:
    api.get("/jobs/j1").mock(return_value=job("done-empty"))
    with pytest.raises(VendorProtocolError, match="without output"):
        await generate(make_backend)


async def test_a_create_answer_without_a_job_id_polls_nothing(
    vendor_api: respx.MockRouter, make_backend: MakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    vendor_api.post("/jobs").respond(200, json={"job": "j1"})
    poll = vendor_api.get("/jobs/j1")
    cancel_route = vendor_api.post("/jobs/j1/cancel")
    with caplog.at_level(logging.WARNING), pytest.raises(VendorProtocolError):
        await generate(make_backend)
    assert not poll.called and not cancel_route.called
    assert '"job"' in caplog.text


async def test_a_cancelled_task_cancels_the_job_before_it_ends(
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
