"""``/v1/images/jobs``: submit answers 202 at once, the job runs in the background, and its
owner polls it, cancels it, and is called back with a signed webhook."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import orjson

from core.errors import VendorUnavailable
from proxy.jobs.signature import verify_signature
from tests.proxy.api.served_app import Client, serving
from tests.proxy.jobs.receiver import WebhookReceiver
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to

ALICE = {"Authorization": "Bearer bg-alice"}
BOB = {"Authorization": "Bearer bg-bob"}
KEYS = {"bg-alice": {"name": "alice", "budget_credits": "100"}, "bg-bob": {"name": "bob"}}
BODY = {"prompt": "a lighthouse at dusk", "size": "256x256", "seed": 3}


async def finished(client: Client, job_id: str, headers: dict[str, str] = ALICE) -> dict[str, Any]:
    """Poll until the job leaves queued/running."""
    async with asyncio.timeout(10):
        while True:
            job: dict[str, Any] = (await client.get(f"/v1/images/jobs/{job_id}", headers=headers)).json()
            if job["status"] not in ("queued", "running"):
                return job
            await asyncio.sleep(0.02)


async def status_becomes(client: Client, job_id: str, status: str) -> None:
    async with asyncio.timeout(10):
        while (await client.get(f"/v1/images/jobs/{job_id}", headers=ALICE)).json()["status"] != status:
            await asyncio.sleep(0.01)


async def spent(client: Client, headers: dict[str, str] = ALICE) -> tuple[Decimal, Decimal]:
    usage = (await client.get("/v1/usage", headers=headers)).json()
    return Decimal(usage["spent_usd"]), Decimal(usage["reserved_usd"])


async def test_a_job_is_accepted_at_once_then_polled_until_its_images_are_ready() -> None:
    async with serving([route_to(ScriptedBackend("runflow", "eu"))], api_keys=KEYS) as client:
        submitted = await client.post("/v1/images/jobs", json=BODY, headers=ALICE)
        assert submitted.status_code == 202
        job = submitted.json()
        assert submitted.headers["location"] == f"/v1/images/jobs/{job['id']}"
        assert job["status"] in ("queued", "running")

        done = await finished(client, job["id"])
        synchronous = await client.post("/v1/images/generations", json=BODY, headers=ALICE)

        assert done["status"] == "succeeded"
        assert done["served"] == {"vendor": "runflow", "region": "eu", "attempts": 1}
        assert done["billing"]["cost_usd"] == synchronous.headers["x-boltgate-cost-usd"]
        assert done["seed"] == 3 and done["size"] == "256x256"
        download = await client.get(done["data"][0]["url"].removeprefix("http://testserver.local"))
        assert download.status_code == 200 and download.content[:4] == b"\x89PNG"
        charged, held = await spent(client)
        assert charged == 2 * Decimal(done["billing"]["cost_usd"])  # the job and the synchronous request
        assert held == 0


async def test_a_job_that_fails_says_why_charges_nothing_and_calls_back(receiver: WebhookReceiver) -> None:
    backend = ScriptedBackend.playing("runflow", *[VendorUnavailable("down", status=503)] * 3)
    allow = {"webhook": {"allowed_hosts": ["127.0.0.1"]}}
    async with serving([route_to(backend)], api_keys=KEYS, jobs=allow) as client:
        job = (await client.post("/v1/images/jobs", json={**BODY, "webhook_url": receiver.url},
                                 headers=ALICE)).json()
        done = await finished(client, job["id"])
        [call] = await receiver.wait_for(1)
        assert done["status"] == "failed"
        assert done["error"]["code"] == "no_backend_available"
        assert "data" not in done
        assert await spent(client) == (0, 0)
    event = orjson.loads(call.body)
    assert event["type"] == "image.job.failed"
    assert event["data"]["error"] == done["error"]


async def test_the_webhook_is_posted_once_with_a_valid_signature(receiver: WebhookReceiver) -> None:
    allow = {"webhook": {"allowed_hosts": ["127.0.0.1"]}}
    async with serving([route_to(ScriptedBackend("runflow"))], api_keys=KEYS, jobs=allow) as client:
        secret = (await client.get("/v1/webhooks/secret", headers=ALICE)).json()["secret"]
        job = (await client.post("/v1/images/jobs", json={**BODY, "webhook_url": receiver.url},
                                 headers=ALICE)).json()
        [call] = await receiver.wait_for(1)
        await asyncio.sleep(0.3)  # time for a second POST, which must not come
        polled = await finished(client, job["id"])

    assert len(receiver.received) == 1
    assert verify_signature(secret, call.body, call.headers["Boltgate-Signature"])
    event = orjson.loads(call.body)
    assert (event["id"], event["type"]) == (job["id"], "image.job.succeeded")
    assert event["data"]["data"] == polled["data"]
    assert polled["webhook"]["delivered"] is True and polled["webhook"]["attempts"] == 1


async def test_a_webhook_answered_500_is_retried_until_it_is_taken(receiver: WebhookReceiver) -> None:
    receiver.statuses.extend([500, 503])
    jobs = {"webhook": {"allowed_hosts": ["127.0.0.1"], "backoff_initial_s": 0.01}}
    async with serving([route_to(ScriptedBackend("runflow"))], api_keys=KEYS, jobs=jobs) as client:
        secret = (await client.get("/v1/webhooks/secret", headers=ALICE)).json()["secret"]
        job = (await client.post("/v1/images/jobs", json={**BODY, "webhook_url": receiver.url},
                                 headers=ALICE)).json()
        calls = await receiver.wait_for(3)
        await asyncio.sleep(0.2)
        polled = await finished(client, job["id"])

    assert len(receiver.received) == 3
    assert all(verify_signature(secret, call.body, call.headers["Boltgate-Signature"]) for call in calls)
    assert polled["webhook"] == {"delivered": True, "attempts": 3, "status": 200, "error": None}


async def test_a_webhook_that_keeps_failing_is_given_up_after_its_attempts(receiver: WebhookReceiver) -> None:
    receiver.statuses.extend([500] * 10)
    jobs = {"webhook": {"allowed_hosts": ["127.0.0.1"], "backoff_initial_s": 0.01, "max_attempts": 3}}
    async with serving([route_to(ScriptedBackend("runflow"))], api_keys=KEYS, jobs=jobs) as client:
        job = (await client.post("/v1/images/jobs", json={**BODY, "webhook_url": receiver.url},
                                 headers=ALICE)).json()
        await receiver.wait_for(3)
        async with asyncio.timeout(5):
            while "webhook" not in (polled := await finished(client, job["id"])):
                await asyncio.sleep(0.02)
    assert len(receiver.received) == 3
    assert polled["webhook"]["delivered"] is False
    assert polled["webhook"]["status"] == 500
    assert polled["status"] == "succeeded"


async def test_an_internal_webhook_url_is_refused_at_submit_unless_allowed(receiver: WebhookReceiver) -> None:
    async with serving([route_to(ScriptedBackend("runflow"))], api_keys=KEYS) as client:
        answers = [await client.post("/v1/images/jobs", json={**BODY, "webhook_url": url}, headers=ALICE)
                   for url in (receiver.url, "https://127.0.0.1/hook", "https://169.254.169.254/latest",
                               "https://10.1.2.3/hook", "ftp://example.com/hook", "https://u:p@example.com/",
                               "https://2130706433/hook", "https://127.1/hook")]
        charged = await spent(client)

    for answer in answers:
        assert answer.status_code == 400
        assert answer.json()["error"]["param"] == "webhook_url"
        assert answer.json()["error"]["code"] == "webhook_url_refused"
    assert charged == (0, 0)
    assert receiver.received == []


async def test_a_webhook_url_that_could_never_be_called_is_a_400_at_submit() -> None:
    """A URL with whitespace or a control character, or a host no name can have, was queued
    (202), charged, and then failed on every delivery; the client learns it only from polling."""
    async with serving([route_to(ScriptedBackend("runflow"))], api_keys=KEYS) as client:
        answers = [await client.post("/v1/images/jobs", json={**BODY, "webhook_url": url}, headers=ALICE)
                   for url in ("https://exa mple.com/hook", "https://example.com/ho ok", "https://example.com/\r\nX: 1",
                               "https://example.com/\x00", "https://exa\tmple.com/", "https://ex_am!ple.com/hook",
                               "https:///hook")]
        charged = await spent(client)

    for answer in answers:
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["param"] == "webhook_url"
    assert charged == (0, 0)


async def test_a_webhook_name_that_resolves_to_loopback_is_refused_when_called(receiver: WebhookReceiver) -> None:
    async with serving([route_to(ScriptedBackend("runflow"))], api_keys=KEYS) as client:
        port = receiver.url.split(":")[2].split("/")[0]
        job = (await client.post("/v1/images/jobs", json={**BODY, "webhook_url": f"https://localhost:{port}/hook"},
                                 headers=ALICE)).json()
        async with asyncio.timeout(5):
            while "webhook" not in (polled := await finished(client, job["id"])):
                await asyncio.sleep(0.02)
    assert polled["webhook"]["delivered"] is False
    assert polled["webhook"]["attempts"] == 1
    assert "non-public" in polled["webhook"]["error"]
    assert receiver.received == []


class Cancellable(ScriptedBackend):
    """Never answers; records that its work was cancelled (as a vendor job's poll would be)."""

    cancelled: bool = False

    async def generate(self, request: Any, deadline: Any) -> Any:
        self.calls.append(request)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise


async def test_cancel_a_queued_job_and_a_running_one_charges_nothing() -> None:
    backend = Cancellable("runflow")
    async with serving([route_to(backend)], api_keys=KEYS, jobs={"concurrency": 1}) as client:
        running = (await client.post("/v1/images/jobs", json=BODY, headers=ALICE)).json()
        queued = (await client.post("/v1/images/jobs", json=BODY, headers=ALICE)).json()
        await status_becomes(client, running["id"], "running")
        _, held = await spent(client)
        assert held > 0

        cancelled_queued = await client.delete(f"/v1/images/jobs/{queued['id']}", headers=ALICE)
        cancelled_running = await client.delete(f"/v1/images/jobs/{running['id']}", headers=ALICE)
        again = await client.delete(f"/v1/images/jobs/{queued['id']}", headers=ALICE)
        await asyncio.sleep(0.2)  # the slot freed by the cancelled run must not start the cancelled job
        after = {job["id"]: await finished(client, job["id"]) for job in (running, queued)}
        charged = await spent(client)

    assert (cancelled_queued.status_code, cancelled_queued.json()["status"]) == (200, "cancelled")
    assert (cancelled_running.status_code, cancelled_running.json()["status"]) == (200, "cancelled")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "job_finished")
    assert backend.cancelled is True
    assert len(backend.calls) == 1  # the queued job never ran
    assert [job["status"] for job in after.values()] == ["cancelled", "cancelled"]
    assert charged == (0, 0)


async def test_another_key_is_told_the_job_does_not_exist() -> None:
    async with serving([route_to(ScriptedBackend("runflow"))], api_keys=KEYS) as client:
        job = (await client.post("/v1/images/jobs", json=BODY, headers=ALICE)).json()
        seen = await client.get(f"/v1/images/jobs/{job['id']}", headers=BOB)
        cancelled = await client.delete(f"/v1/images/jobs/{job['id']}", headers=BOB)
        unknown = await client.get("/v1/images/jobs/job_AAAAAAAAAAAAAAAAAAAAAA", headers=ALICE)
        nobody = await client.get(f"/v1/images/jobs/{job['id']}")
        owner = await finished(client, job["id"])

    assert seen.status_code == cancelled.status_code == unknown.status_code == 404
    assert seen.json() == unknown.json() | {"error": {**unknown.json()["error"],
                                                      "message": f"No job with id {job['id']}"}}
    assert seen.json()["error"]["code"] == "job_not_found"
    assert nobody.status_code == 401
    assert owner["status"] == "succeeded"


async def test_a_submit_retried_with_its_idempotency_key_is_the_same_job_charged_once() -> None:
    """A client that lost the 202 and sends the submit again under its Idempotency-Key gets the
    job the first submit queued (its current state), never a second job held and charged."""
    backend = ScriptedBackend("runflow")
    async with serving([route_to(backend)], api_keys=KEYS) as client:
        headers = {**ALICE, "Idempotency-Key": "submit-1"}
        first = await client.post("/v1/images/jobs", json=BODY, headers=headers)
        retried = await client.post("/v1/images/jobs", json=BODY, headers=headers)
        done = await finished(client, first.json()["id"])
        after_it_ran = await client.post("/v1/images/jobs", json=BODY, headers=headers)
        other_body = await client.post("/v1/images/jobs", json={**BODY, "seed": 4}, headers=headers)
        charged = await spent(client)

    assert first.status_code == retried.status_code == after_it_ran.status_code == 202, retried.text
    assert retried.json()["id"] == after_it_ran.json()["id"] == first.json()["id"]
    assert retried.headers["x-boltgate-idempotent-replay"] == "true"
    assert retried.headers["location"] == first.headers["location"]
    assert after_it_ran.json()["status"] == "succeeded"
    assert (other_body.status_code, other_body.json()["error"]["code"]) == (409, "idempotency_key_reused")
    assert len(backend.calls) == 1
    assert charged == (Decimal(done["billing"]["cost_usd"]), 0)


async def test_a_key_over_its_budget_is_refused_at_submit() -> None:
    keys = {"bg-alice": {"name": "alice", "budget_credits": "0.01"}}
    async with serving([route_to(ScriptedBackend("runflow"))], api_keys=keys) as client:
        refused = await client.post("/v1/images/jobs", json=BODY, headers=ALICE)
        synchronous = await client.post("/v1/images/generations", json=BODY, headers=ALICE)

    assert refused.status_code == synchronous.status_code == 402
    assert refused.json()["error"]["code"] == synchronous.json()["error"]["code"] == "insufficient_credits"


async def test_the_budget_counts_queued_jobs() -> None:
    """Each submit holds its price, so submits past the budget are refused before anything runs."""
    price = Decimal("0.001")
    backend = Cancellable("runflow")
    budget = {"bg-alice": {"name": "alice", "budget_credits": "2"}}  # a score of submits fill it, not a thousand
    jobs = {"concurrency": 1, "stop_grace_s": 0}  # the job left running is cancelled at once when the app stops
    async with serving([route_to(backend)], api_keys=budget, jobs=jobs) as client:
        first = await client.post("/v1/images/jobs", json=BODY, headers=ALICE)
        hold = Decimal((await client.get("/v1/usage", headers=ALICE)).json()["reserved_usd"])
        assert hold >= price
        fits = int(Decimal("0.02") / hold)  # the budget is 2 credits of $0.01
        answers = [await client.post("/v1/images/jobs", json=BODY, headers=ALICE) for _ in range(fits)]
    assert first.status_code == 202
    assert [answer.status_code for answer in answers] == [202] * (fits - 1) + [402]


async def test_bad_job_bodies_get_a_400_naming_the_field() -> None:
    async with serving([route_to(ScriptedBackend("runflow"))], api_keys=KEYS) as client:
        b64 = await client.post("/v1/images/jobs", json={**BODY, "response_format": "b64_json"}, headers=ALICE)
        unknown = await client.post("/v1/images/jobs", json={**BODY, "colour": "red"}, headers=ALICE)
        not_json = await client.post("/v1/images/jobs", content=b"{", headers=ALICE)
        bad_url = await client.post("/v1/images/jobs", json={**BODY, "webhook_url": 7}, headers=ALICE)
        listy = await client.post("/v1/images/jobs", json=[BODY], headers=ALICE)
    assert (b64.status_code, b64.json()["error"]["param"]) == (400, "response_format")
    assert (unknown.status_code, unknown.json()["error"]["param"]) == (400, "colour")
    assert (not_json.status_code, not_json.json()["error"]["code"]) == (400, "invalid_json")
    assert (bad_url.status_code, bad_url.json()["error"]["param"]) == (400, "webhook_url")
    assert listy.status_code == 400


async def test_the_admin_api_hands_a_new_key_its_webhook_secret_once() -> None:
    admin = {"Authorization": "Bearer admin-secret"}
    async with serving([route_to(ScriptedBackend("runflow"))], admin_token="admin-secret") as client:
        created = (await client.post("/v1/admin/keys", json={"name": "team"}, headers=admin)).json()
        other = (await client.post("/v1/admin/keys", json={"name": "other"}, headers=admin)).json()
        read = await client.get("/v1/webhooks/secret", headers={"Authorization": f"Bearer {created['key']}"})
        listed = (await client.get("/v1/admin/keys", headers=admin)).json()["data"]
    assert created["webhook_secret"].startswith("whsec_")
    assert read.json()["secret"] == created["webhook_secret"] != other["webhook_secret"]
    assert all("webhook_secret" not in entry for entry in listed)


async def test_a_job_is_routed_by_the_policy_it_asks_for_within_what_its_key_may() -> None:
    dear_runflow = {"vendor_prices": {"runflow": {"price_usd": "0.05"}}}
    routes = [route_to(ScriptedBackend("runflow", "eu"), priority=10),
              route_to(ScriptedBackend("eachlabs", "us"), priority=20)]
    keys = {**KEYS, "bg-narrow": {"name": "narrow", "routing": {"policies": ["priority"], "pin_routes": False}}}
    async with serving(routes, api_keys=keys, pricing=dear_runflow) as client:
        in_body = await client.post("/v1/images/jobs", json={**BODY, "routing_policy": "cheapest"}, headers=ALICE)
        in_header = await client.post("/v1/images/jobs", json=BODY,
                                      headers={**ALICE, "x-boltgate-routing-policy": "cheapest"})
        default = await client.post("/v1/images/jobs", json=BODY, headers=ALICE)
        refused = await client.post("/v1/images/jobs", json={**BODY, "routing_policy": "cheapest"},
                                    headers={"Authorization": "Bearer bg-narrow"})
        served = [(await finished(client, answer.json()["id"]))["served"]["vendor"]
                  for answer in (in_body, in_header, default)]

    assert served == ["eachlabs", "eachlabs", "runflow"]
    assert (refused.status_code, refused.json()["error"]["param"]) == (403, "routing_policy")


async def test_a_bad_header_is_a_400_even_where_the_body_s_field_wins_over_it() -> None:
    async with serving([route_to(ScriptedBackend("runflow"))], api_keys=KEYS) as client:
        price = await client.post("/v1/images/jobs", json={**BODY, "max_price_usd": "1"},
                                  headers={**ALICE, "x-boltgate-max-price-usd": "cheap"})
        policy = await client.post("/v1/images/jobs", json={**BODY, "routing_policy": None},
                                   headers={**ALICE, "x-boltgate-routing-policy": "random"})
        ceiling = await client.post("/v1/images/jobs", json={**BODY, "max_price_usd": None},
                                    headers={**ALICE, "x-boltgate-max-price-usd": "0"})

    assert (price.status_code, price.json()["error"]["param"]) == (400, "x-boltgate-max-price-usd")
    assert (policy.status_code, policy.json()["error"]["param"]) == (400, "routing_policy")
    assert (ceiling.status_code, ceiling.json()["error"]["code"]) == (402, "price_ceiling_exceeded")


async def test_a_job_body_takes_each_value_only_in_its_json_type_as_generations_do() -> None:
    async with serving([route_to(ScriptedBackend("runflow"))], api_keys=KEYS) as client:
        answers = {field: await client.post("/v1/images/jobs", json={**BODY, field: value}, headers=ALICE)
                   for field, value in (("max_price_usd", False), ("n", "2"), ("seed", True))}
        synchronous = await client.post("/v1/images/generations", json={**BODY, "max_price_usd": False},
                                        headers=ALICE)

    assert {field: answer.status_code for field, answer in answers.items()} == {
        "max_price_usd": 400, "n": 400, "seed": 400}
    assert synchronous.status_code == 400
    assert [answer.json()["error"]["param"] for answer in answers.values()] == ["max_price_usd", "n", "seed"]
