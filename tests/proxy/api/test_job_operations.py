"""The job and webhook-secret endpoints are in the OpenAPI document, and what they answer is
what it says: every answer below validates against the documented model."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from core.errors import VendorUnavailable
from proxy.api.schemas import CancelledImageJob, ErrorBody, ImageJob, WebhookSecret
from tests.proxy.api.served_app import Client, serving
from tests.proxy.api.test_openapi import schema, variant
from tests.proxy.jobs.receiver import WebhookReceiver
from tests.proxy.jobs.test_jobs_api import ALICE, BODY, KEYS, Cancellable, finished, status_becomes
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to


def documented_json(operation: dict[str, Any], status: str) -> dict[str, Any]:
    content: dict[str, Any] = operation["responses"][status]["content"]["application/json"]["schema"]
    return content


async def test_the_job_endpoints_are_documented_with_their_answers(client: Client) -> None:
    paths = (await schema(client))["paths"]
    submit = paths["/v1/images/jobs"]["post"]
    job = paths["/v1/images/jobs/{job_id}"]
    secret = paths["/v1/webhooks/secret"]["get"]

    assert set(submit["responses"]) == {"202", "400", "401", "402", "403", "404", "409", "413", "429", "500", "503"}
    assert submit["responses"]["202"]["headers"]["location"]["required"] is True
    assert "x-ratelimit-remaining-requests" in submit["responses"]["202"]["headers"]
    assert {"retry-after", "x-ratelimit-limit"} <= set(submit["responses"]["429"]["headers"])
    assert documented_json(submit, "202")["title"] == "ImageJob"
    assert set(job) == {"get", "delete"}
    assert set(job["delete"]["responses"]) == {"200", "401", "404", "409", "500", "503"}
    assert documented_json(job["delete"], "200")["properties"]["status"]["const"] == "cancelled"
    assert documented_json(job["get"], "404")["required"] == ["error"]
    assert set(documented_json(secret, "200")["required"]) == {"object", "secret", "signature_header"}


async def test_the_job_body_is_the_generation_body_answered_as_urls_with_a_webhook(client: Client) -> None:
    submit = (await schema(client))["paths"]["/v1/images/jobs"]["post"]
    body = submit["requestBody"]["content"]["application/json"]["schema"]
    properties = body["properties"]

    assert body["additionalProperties"] is False and body["required"] == ["prompt"]
    assert variant(properties["response_format"])["const"] == "url"
    assert variant(properties["webhook_url"]) == {"type": "string", "maxLength": 2048, "format": "uri"}
    assert variant(properties["stream"])["const"] is False
    assert properties["partial_images"]["type"] == "null"
    assert variant(properties["steps"])["maximum"] == 50  # narrowed to the routes, as generations are
    parameters = {parameter["name"]: parameter for parameter in submit["parameters"]}
    assert set(parameters) == {"x-boltgate-max-price-usd", "x-boltgate-routing-policy", "x-boltgate-route",
                               "x-boltgate-hedge", "Idempotency-Key"}
    generations = (await schema(client))["paths"]["/v1/images/generations"]["post"]["parameters"]
    pin = next(parameter for parameter in generations if parameter["name"] == "x-boltgate-route")
    assert parameters["x-boltgate-route"]["schema"] == pin["schema"]  # the same routes to pin


async def test_the_vendor_doors_and_the_playground_stay_out_of_the_document(client: Client) -> None:
    paths = set((await schema(client))["paths"])

    assert not [path for path in paths if path.startswith("/vendors/")]
    assert "/" not in paths


async def test_every_job_answer_validates_against_its_documented_model() -> None:
    backend = ScriptedBackend.playing("runflow", "ok", *[VendorUnavailable("down", status=503)] * 3)
    allow = {"webhook": {"allowed_hosts": ["127.0.0.1"], "max_attempts": 1}}
    async with WebhookReceiver() as receiver, serving([route_to(backend)], api_keys=KEYS, jobs=allow) as client:
        submitted = await client.post("/v1/images/jobs", json={**BODY, "webhook_url": receiver.url}, headers=ALICE)
        succeeded = await finished(client, submitted.json()["id"])
        failing = (await client.post("/v1/images/jobs", json={**BODY, "webhook_url": receiver.url},
                                     headers=ALICE)).json()
        await finished(client, failing["id"])
        await receiver.wait_for(2)
        async with asyncio.timeout(10):  # the outcome is written once the receiver has answered
            while "webhook" not in (failed := (await client.get(f"/v1/images/jobs/{failing['id']}",
                                                                 headers=ALICE)).json()):
                await asyncio.sleep(0.02)
        secret = await client.get("/v1/webhooks/secret", headers=ALICE)
        unknown = await client.get("/v1/images/jobs/job_AAAAAAAAAAAAAAAAAAAAAA", headers=ALICE)

    assert re.fullmatch(r"/v1/images/jobs/job_[A-Za-z0-9_-]{22}", submitted.headers["location"])
    ImageJob.model_validate(submitted.json())
    assert ImageJob.model_validate(succeeded).billing is not None
    assert ImageJob.model_validate(failed).error is not None and failed["webhook"]["delivered"] is True
    WebhookSecret.model_validate(secret.json())
    ErrorBody.model_validate(unknown.json())


async def test_a_cancelled_job_validates_as_documented() -> None:
    async with serving([route_to(Cancellable("runflow"))], api_keys=KEYS) as client:
        job = (await client.post("/v1/images/jobs", json=BODY, headers=ALICE)).json()
        await status_becomes(client, job["id"], "running")
        cancelled = await client.delete(f"/v1/images/jobs/{job['id']}", headers=ALICE)
        again = await client.delete(f"/v1/images/jobs/{job['id']}", headers=ALICE)

    CancelledImageJob.model_validate(cancelled.json())
    assert again.status_code == 409
    ErrorBody.model_validate(again.json())
