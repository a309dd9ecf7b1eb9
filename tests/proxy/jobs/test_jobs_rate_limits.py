"""A job counts against its key's rate limits once, when it is submitted: a submit over the
limits is a 429 with Retry-After and the ``x-ratelimit-*`` headers, and the run of a job that was
let in is not counted (or refused) again."""

from __future__ import annotations

from typing import Any

from tests.proxy.api.served_app import serving
from tests.proxy.jobs.test_jobs_api import ALICE, BODY, finished, spent
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to


def limited(**limits: int) -> dict[str, Any]:
    return {"bg-alice": {"name": "alice", "budget_credits": "100", "limits": limits}}


async def test_a_submit_over_the_key_s_requests_per_minute_is_a_429_with_its_headers() -> None:
    backend = ScriptedBackend("runflow")
    async with serving([route_to(backend)], api_keys=limited(requests_per_minute=2)) as client:
        accepted = [await client.post("/v1/images/jobs", json=BODY, headers=ALICE) for _ in range(2)]
        refused = await client.post("/v1/images/jobs", json=BODY, headers=ALICE)
        for answer in accepted:
            await finished(client, answer.json()["id"])
        charged, held = await spent(client)

    assert [answer.status_code for answer in accepted] == [202, 202]
    assert [answer.headers["x-ratelimit-remaining-requests"] for answer in accepted] == ["1", "0"]
    assert accepted[0].headers["x-ratelimit-limit-requests"] == "2"
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert 0 < int(refused.headers["retry-after"]) <= 60
    assert (refused.headers["x-ratelimit-limit"], refused.headers["x-ratelimit-remaining"]) == ("2", "0")
    assert refused.headers["x-ratelimit-reset-requests"] == refused.headers["retry-after"]
    assert len(backend.calls) == 2  # the refused job was never made, so never run
    assert held == 0 and charged > 0


async def test_a_submit_over_the_images_per_minute_is_refused_before_credits_are_held() -> None:
    async with serving([route_to(ScriptedBackend("runflow"))], api_keys=limited(images_per_minute=3)) as client:
        first = await client.post("/v1/images/jobs", json={**BODY, "n": 2}, headers=ALICE)
        await finished(client, first.json()["id"])
        refused = await client.post("/v1/images/jobs", json={**BODY, "n": 2}, headers=ALICE)
        _, held = await spent(client)

    assert first.status_code == 202 and first.headers["x-ratelimit-remaining-images"] == "1"
    assert refused.status_code == 429 and refused.headers["x-ratelimit-remaining-images"] == "0"
    assert held == 0


async def test_a_job_let_in_is_not_counted_again_when_it_runs() -> None:
    async with serving([route_to(ScriptedBackend("runflow"))],
                       api_keys=limited(requests_per_minute=2, images_per_minute=2)) as client:
        job = (await client.post("/v1/images/jobs", json=BODY, headers=ALICE)).json()
        done = await finished(client, job["id"])
        second = await client.post("/v1/images/generations", json=BODY, headers=ALICE)
        third = await client.post("/v1/images/generations", json=BODY, headers=ALICE)

    assert done["status"] == "succeeded"
    assert second.status_code == 200  # the job used one request and one image of each minute
    assert second.headers["x-ratelimit-remaining-requests"] == "0"
    assert second.headers["x-ratelimit-remaining-images"] == "0"
    assert third.status_code == 429


async def test_a_job_runs_even_when_the_key_s_minute_is_used_up_after_its_submit() -> None:
    async with serving([route_to(ScriptedBackend("runflow"))], api_keys=limited(requests_per_minute=1),
                       jobs={"concurrency": 1}) as client:
        job = (await client.post("/v1/images/jobs", json=BODY, headers=ALICE)).json()
        done = await finished(client, job["id"])

    assert done["status"] == "succeeded", done.get("error")
