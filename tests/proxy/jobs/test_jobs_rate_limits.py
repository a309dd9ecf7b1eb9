"""A job counts against its key's per-minute limits once, when it is submitted: a submit over the
limits is a 429 with Retry-After and the ``x-ratelimit-*`` headers, and the run of a job that was
let in is not counted (or refused) again. Its run is a request in flight: it takes one of the
key's ``concurrent_requests`` while it runs, and waits queued while the key has none free."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from backends.base import BackendResult
from core.deadline import Deadline
from core.request import ImageRequest
from proxy.jobs import queue as queue_module
from proxy.jobs.queue import InProcessJobQueue
from tests.proxy.api.across_loops import EventAcrossLoops
from tests.proxy.api.served_app import serving
from tests.proxy.jobs.test_jobs_api import ALICE, BOB, BODY, finished, spent
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


# A key's concurrent_requests bounds its requests in flight, running jobs included: a job whose
# key is at the limit waits, queued, without taking a runner from other keys' jobs for long.


class Gated(ScriptedBackend):
    """Holds every call until ``opened``; counts how many were in flight at once."""

    def __init__(self, vendor: str) -> None:
        super().__init__(vendor)
        self.opened = EventAcrossLoops()  # set by the test, awaited on the app's loop
        self.in_flight = 0
        self.most_in_flight = 0

    async def generate(self, request: ImageRequest, deadline: Deadline) -> BackendResult:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.opened.wait()
            return await super().generate(request, deadline)
        finally:
            self.in_flight -= 1


class Deferrals:
    """Counts the jobs a runner handed back to wait (``JobQueue.defer``), and shortens the wait
    before they are handed out again (``RETRY_LATER_S``, a second) to a hundredth: the tests
    wait for each deferred job to run, not for a pause."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        monkeypatch.setattr(queue_module, "RETRY_LATER_S", 0.01)
        original = getattr(InProcessJobQueue, "defer", None)

        async def counting(queue: InProcessJobQueue, delivery: Any) -> None:
            self.count += 1
            if original is not None:
                await original(queue, delivery)

        monkeypatch.setattr(InProcessJobQueue, "defer", counting, raising=False)


async def test_a_key_s_running_jobs_are_bounded_by_its_concurrent_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = Gated("runflow")
    deferrals = Deferrals(monkeypatch)
    async with serving([route_to(backend)], api_keys=limited(concurrent_requests=1),
                       jobs={"concurrency": 4}) as client:
        submitted = [await client.post("/v1/images/jobs", json=BODY, headers=ALICE) for _ in range(3)]
        async with asyncio.timeout(10):  # the runner took them all: one runs, the others wait (or, unbounded, run)
            while not (backend.in_flight == 3 or (backend.in_flight and deferrals.count >= 2)):
                await asyncio.sleep(0.01)
        running_alone = backend.in_flight
        synchronous = await client.post("/v1/images/generations", json=BODY, headers=ALICE)
        backend.opened.set()
        done = [await finished(client, answer.json()["id"]) for answer in submitted]

    assert [answer.status_code for answer in submitted] == [202] * 3  # a submit waits in the queue, never a 429
    assert running_alone == 1
    assert synchronous.status_code == 429  # the running job holds the key's one request in flight
    assert [job["status"] for job in done] == ["succeeded"] * 3
    assert backend.most_in_flight == 1 and len(backend.calls) == 3


async def test_a_job_waiting_for_its_key_does_not_hold_back_another_key_s_job(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = Gated("runflow")
    deferrals = Deferrals(monkeypatch)
    keys = {**limited(concurrent_requests=1), "bg-bob": {"name": "bob"}}
    async with serving([route_to(backend)], api_keys=keys, jobs={"concurrency": 2}) as client:
        for _ in range(3):
            await client.post("/v1/images/jobs", json=BODY, headers=ALICE)
        bobs = await client.post("/v1/images/jobs", json=BODY, headers=BOB)
        async with asyncio.timeout(10):
            while backend.in_flight < 2:  # alice's first job and bob's, while alice's others wait
                await asyncio.sleep(0.01)
        backend.opened.set()
        done = await finished(client, bobs.json()["id"], BOB)

    assert done["status"] == "succeeded" and deferrals.count >= 1
