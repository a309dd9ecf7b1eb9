"""A door's run as the job it becomes: the generation body names only what the client gave, so
the job is routed as the door's request would be. A door's create reads what a generation reads
besides its body: ``Idempotency-Key`` (a retried create is the same run, charged once) and the
routing headers (a pinned route, within what the key may ask)."""

from __future__ import annotations

import asyncio
from collections import deque
from decimal import Decimal
from typing import Any

import pytest

from core.errors import StateUnavailable
from pricing.ledger import Ledger
from proxy.api.openai_request import to_image_request
from proxy.doors.eachlabs import INPUT as EACHLABS_INPUT
from proxy.doors.runflow import INPUT as RUNFLOW_INPUT
from proxy.doors.runs import generation_body
from proxy.jobs.service import JobService
from tests.proxy.api.served_app import Client, serving
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to
from tests.state_clock import StateClock


def test_a_job_body_names_only_the_fields_the_client_gave() -> None:
    request = RUNFLOW_INPUT.to_request({"prompt": "a fox", "width": 512, "height": 768})

    body = generation_body(request)

    assert body == {"prompt": "a fox", "size": "512x768", "output_format": "jpeg", "response_format": "url"}
    job_request = to_image_request(body)
    assert not {"steps", "seed", "guidance_scale"} & job_request.model_fields_set  # any vendor may serve it


def test_a_job_body_carries_every_field_given_and_means_the_same_request() -> None:
    request = EACHLABS_INPUT.to_request({"prompt": "a fox", "negative_prompt": "fog", "width": "512",
                                         "height": "512", "num_outputs": "2", "num_inference_steps": "8",
                                         "guidance_scale": "1.5", "seed": "7"})

    job_request = to_image_request(generation_body(request))

    assert job_request.model_dump(exclude={"model"}) == request.model_dump(exclude={"model"})
    assert job_request.model_fields_set >= request.model_fields_set - {"response_format"}


# A door's create, retried: the Idempotency-Key names one run, whichever door it came by.

ALICE = {"Authorization": "Bearer bg-alice"}
KEYS = {"bg-alice": {"name": "alice", "budget_credits": "100"},
        "bg-fixed": {"name": "fixed", "routing": {"pin_routes": False}}}
RUNFLOW_CREATE = "/vendors/runflow/v1/models/bytedance/sd-xl-lightning/runs"
RUNFLOW_BODY: dict[str, Any] = {"input": {"prompt": "a fox", "width": 256, "height": 256}, "client_ref": "order-1"}
EACHLABS_CREATE = "/vendors/eachlabs/v1/prediction/"
EACHLABS_BODY: dict[str, Any] = {"model": "sdxl-lightning-4step", "version": "0.0.1",
                 "input": {"prompt": "a fox", "width": "256", "height": "256"}}
IMAGEAPI_CREATE = "/vendors/imageapi/api/v1/generate"
IMAGEAPI_BODY = {"prompt": "a fox", "width": 256, "height": 256}


async def run_ended(client: Client, run_id: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            job: dict[str, Any] = (await client.get(f"/v1/images/jobs/{run_id}", headers=ALICE)).json()
            if job["status"] not in ("queued", "running"):
                return job
            await asyncio.sleep(0.02)


async def spent(client: Client) -> tuple[Decimal, Decimal]:
    usage = (await client.get("/v1/usage", headers=ALICE)).json()
    return Decimal(usage["spent_usd"]), Decimal(usage["reserved_usd"])


async def test_a_runflow_create_retried_with_its_idempotency_key_is_the_same_run_charged_once() -> None:
    vendor = ScriptedBackend("aigateway")
    async with serving([route_to(vendor)], api_keys=KEYS) as client:
        headers = {**ALICE, "Idempotency-Key": "order-1"}
        first = await client.post(RUNFLOW_CREATE, json=RUNFLOW_BODY, headers=headers)
        retried = await client.post(RUNFLOW_CREATE, json=RUNFLOW_BODY, headers=headers)

        assert first.status_code == retried.status_code == 200, (first.text, retried.text)
        run_id = first.json()["id"]
        assert retried.json()["id"] == run_id
        assert retried.headers["x-boltgate-idempotent-replay"] == "true"
        job = await run_ended(client, run_id)
        again = await client.post(RUNFLOW_CREATE, json=RUNFLOW_BODY, headers=headers)  # after it ran: still it
        assert again.json() == {**first.json(), "status_code": "succeeded"}
        assert len(vendor.calls) == 1
        assert await spent(client) == (Decimal(job["billing"]["cost_usd"]), Decimal(0))


@pytest.mark.parametrize("authorization", ["Basic dXNlcjpwYXNz", "Token bg-alice", "Bearer ", "bg-alice"])
async def test_an_eachlabs_key_in_x_api_key_serves_beside_an_authorization_that_is_no_bearer_token(
        authorization: str) -> None:
    """Eachlabs documents ``Authorization: Bearer`` and its older examples ``X-API-Key``: an
    Authorization of another scheme (a proxy's Basic, say) carries no Eachlabs key, so the key in
    ``X-API-Key`` is the one to read."""
    async with serving([route_to(ScriptedBackend("aigateway"))], api_keys=KEYS) as client:
        created = await client.post(EACHLABS_CREATE, json=EACHLABS_BODY,
                                    headers={"Authorization": authorization, "X-API-Key": "bg-alice"})
    assert created.status_code == 200, created.text


async def test_an_eachlabs_bearer_token_is_the_key_read_when_both_headers_are_sent() -> None:
    async with serving([route_to(ScriptedBackend("aigateway"))], api_keys=KEYS) as client:
        served = await client.post(EACHLABS_CREATE, json=EACHLABS_BODY,
                                   headers={"Authorization": "Bearer bg-alice", "X-API-Key": "bg-nope"})
        refused = await client.post(EACHLABS_CREATE, json=EACHLABS_BODY,
                                    headers={"Authorization": "Bearer bg-nope", "X-API-Key": "bg-alice"})
    assert served.status_code == 200, served.text
    assert refused.status_code == 401
    assert set(refused.json()) == {"error"}


async def test_a_door_without_x_api_key_in_its_auth_ignores_that_header() -> None:
    async with serving([route_to(ScriptedBackend("aigateway"))], api_keys=KEYS) as client:
        refused = await client.post(RUNFLOW_CREATE, json=RUNFLOW_BODY,
                                    headers={"Authorization": "Basic dXNlcjpwYXNz", "X-API-Key": "bg-alice"})
    assert refused.status_code == 401


async def test_an_eachlabs_create_retried_with_its_idempotency_key_is_the_same_prediction() -> None:
    vendor = ScriptedBackend("aigateway")
    async with serving([route_to(vendor)], api_keys=KEYS) as client:
        headers = {**ALICE, "Idempotency-Key": "k-7"}
        first = await client.post(EACHLABS_CREATE, json=EACHLABS_BODY, headers=headers)
        retried = await client.post(EACHLABS_CREATE, json=EACHLABS_BODY, headers=headers)

        assert first.json()["predictionID"] == retried.json()["predictionID"]
        job = await run_ended(client, first.json()["predictionID"])
        assert len(vendor.calls) == 1
        assert await spent(client) == (Decimal(job["billing"]["cost_usd"]), Decimal(0))


async def test_an_idempotency_key_reused_with_another_body_is_a_409_in_the_doors_error_shape() -> None:
    async with serving([route_to(ScriptedBackend("aigateway", script=deque(["hang"])))], api_keys=KEYS) as client:
        headers = {**ALICE, "Idempotency-Key": "k-1"}
        await client.post(RUNFLOW_CREATE, json=RUNFLOW_BODY, headers=headers)
        await client.post(EACHLABS_CREATE, json=EACHLABS_BODY, headers=headers)
        other_input = {**RUNFLOW_BODY, "input": {**RUNFLOW_BODY["input"], "prompt": "a wolf"}}

        runflow = await client.post(RUNFLOW_CREATE, json=other_input, headers=headers)
        eachlabs = await client.post(EACHLABS_CREATE, json={**EACHLABS_BODY, "input": {"prompt": "a wolf"}},
                                     headers=headers)

        assert runflow.status_code == 409 and runflow.json()["code"] == "CONFLICT"
        assert "different request" in runflow.json()["message"]
        assert runflow.headers["x-should-retry"] == "false"
        assert eachlabs.status_code == 409 and "different request" in eachlabs.json()["error"]
        assert (await spent(client))[1] > 0  # the first two runs hold their credits; nothing else does


async def test_a_create_that_was_refused_leaves_its_idempotency_key_free() -> None:
    vendor = ScriptedBackend("aigateway")
    async with serving([route_to(vendor)], api_keys=KEYS) as client:
        headers = {**ALICE, "Idempotency-Key": "k-2"}
        refused = await client.post(RUNFLOW_CREATE, json={"input": {"prompt": ""}}, headers=headers)
        created = await client.post(RUNFLOW_CREATE, json=RUNFLOW_BODY, headers=headers)

        assert refused.status_code == 422
        assert created.status_code == 200, created.text


async def test_imageapis_generate_replays_its_idempotency_key_and_refuses_another_body() -> None:
    vendor = ScriptedBackend("aigateway")
    async with serving([route_to(vendor)], api_keys=KEYS) as client:
        headers = {**ALICE, "Idempotency-Key": "k-3"}
        first = await client.post(IMAGEAPI_CREATE, json=IMAGEAPI_BODY, headers=headers)
        retried = await client.post(IMAGEAPI_CREATE, json=IMAGEAPI_BODY, headers=headers)
        other = await client.post(IMAGEAPI_CREATE, json={**IMAGEAPI_BODY, "prompt": "a wolf"}, headers=headers)

        assert retried.json() == first.json() and len(vendor.calls) == 1
        assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"


# A door's create may ask what a generation may ask of the router: one route, a policy, hedging.

async def test_a_door_create_pinned_with_x_boltgate_route_is_served_by_that_route_only() -> None:
    first, second = ScriptedBackend("aigateway"), ScriptedBackend("imageapi")
    async with serving([route_to(first, priority=1), route_to(second, priority=2)], api_keys=KEYS) as client:
        pinned = {**ALICE, "x-boltgate-route": "imageapi"}
        run = await client.post(RUNFLOW_CREATE, json=RUNFLOW_BODY, headers=pinned)
        prediction = await client.post(EACHLABS_CREATE, json=EACHLABS_BODY, headers=pinned)
        generated = await client.post(IMAGEAPI_CREATE, json=IMAGEAPI_BODY, headers=pinned)

        served = [(await run_ended(client, run.json()["id"]))["served"]["vendor"],
                  (await run_ended(client, prediction.json()["predictionID"]))["served"]["vendor"],
                  generated.headers["x-boltgate-backend"]]
        assert served == ["imageapi"] * 3
        assert first.calls == []


async def test_a_door_pin_the_key_may_not_ask_for_or_that_names_no_route_is_refused_in_the_doors_shape() -> None:
    async with serving([route_to(ScriptedBackend("aigateway"))], api_keys=KEYS) as client:
        forbidden = await client.post(RUNFLOW_CREATE, json=RUNFLOW_BODY,
                                      headers={"Authorization": "Bearer bg-fixed", "x-boltgate-route": "aigateway"})
        unknown = await client.post(EACHLABS_CREATE, json=EACHLABS_BODY,
                                    headers={**ALICE, "x-boltgate-route": "nowhere"})

        assert forbidden.status_code == 403 and forbidden.json()["code"] == "PERMISSION_DENIED"
        assert unknown.status_code == 400 and "nowhere" in unknown.json()["error"]
        assert await spent(client) == (Decimal(0), Decimal(0))


class ProcessKilled(Exception):
    """Stands for the process dying at that point: nothing after it runs (the app answers 500
    where a dead process would answer nothing)."""


async def test_a_create_killed_after_queueing_its_run_answers_that_run_on_retry_never_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The process died between queueing the run and answering the create (a restart picks the
    queued job up): the client's retry under its Idempotency-Key gets that run, charged once."""
    vendor = ScriptedBackend("aigateway")
    enqueue = JobService.enqueue
    queued: list[str] = []

    async def killed_once_queued(service: JobService, *args: Any, **kwargs: Any) -> Any:
        record, headers = await enqueue(service, *args, **kwargs)
        if not queued:
            queued.append(record.id)
            raise ProcessKilled
        return record, headers

    monkeypatch.setattr(JobService, "enqueue", killed_once_queued)
    async with serving([route_to(vendor)], api_keys=KEYS) as client:
        headers = {**ALICE, "Idempotency-Key": "k-4"}
        killed = await client.post(EACHLABS_CREATE, json=EACHLABS_BODY, headers=headers)
        retried = await client.post(EACHLABS_CREATE, json=EACHLABS_BODY, headers=headers)
        job = await run_ended(client, queued[0])

        assert killed.status_code == 500 and retried.status_code == 200, retried.text
        assert retried.json()["predictionID"] == queued[0]
        assert retried.headers["x-boltgate-idempotent-replay"] == "true"
        assert job["status"] == "succeeded" and len(vendor.calls) == 1
        assert await spent(client) == (Decimal(job["billing"]["cost_usd"]), Decimal(0))


async def test_a_create_cut_off_before_its_run_was_queued_says_so_and_charges_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The store went down after the key was claimed and before the run was queued, and stayed
    down for the claim's release: no run exists. A retry while the create could still be going
    is "in progress"; after, a 409 that says nothing was charged and to use a new key."""
    clock = StateClock(monkeypatch)
    vendor = ScriptedBackend("aigateway")

    async def store_down(*args: Any, **kwargs: Any) -> Any:
        raise StateUnavailable("the state store did not answer")

    async with serving([route_to(vendor)], api_keys=KEYS) as client:
        headers = {**ALICE, "Idempotency-Key": "k-5"}
        with monkeypatch.context() as down:
            down.setattr(JobService, "enqueue", store_down)
            down.setattr(Ledger, "release_idempotency", store_down)
            cut_off = await client.post(RUNFLOW_CREATE, json=RUNFLOW_BODY, headers=headers)
        at_once = await client.post(RUNFLOW_CREATE, json=RUNFLOW_BODY, headers=headers)
        clock.advance(120)
        later = await client.post(RUNFLOW_CREATE, json=RUNFLOW_BODY, headers=headers)
        fresh = await client.post(RUNFLOW_CREATE, json=RUNFLOW_BODY, headers={**ALICE, "Idempotency-Key": "k-6"})

        assert cut_off.status_code == 503
        assert at_once.status_code == 409 and "in progress" in at_once.json()["message"]
        assert later.status_code == 409 and later.headers["x-should-retry"] == "false"
        assert "nothing was charged" in later.json()["message"] and "new Idempotency-Key" in later.json()["message"]
        job = await run_ended(client, fresh.json()["id"])
        assert await spent(client) == (Decimal(job["billing"]["cost_usd"]), Decimal(0))
        assert len(vendor.calls) == 1
