"""Two gateways sharing one real Redis: either runs a job, either answers for it, either cancels it."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from tests.proxy.api.served_app import serving
from tests.proxy.jobs.test_jobs_api import ALICE, BODY, KEYS, Cancellable, finished, spent, status_becomes
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis


async def test_a_job_submitted_to_one_replica_is_seen_and_cancelled_through_the_other() -> None:
    backend = Cancellable("runflow")
    with RedisServer() as url:
        settings = {"state_backend": "redis", "redis_url": url, "jobs": {"reclaim_idle_s": 0.3}}
        async with serving([route_to(backend)], api_keys=KEYS, **settings) as one, \
                serving([route_to(backend)], api_keys=KEYS, **settings) as other:
            job = (await one.post("/v1/images/jobs", json=BODY, headers=ALICE)).json()
            await status_becomes(one, job["id"], "running")
            cancelled = await other.delete(f"/v1/images/jobs/{job['id']}", headers=ALICE)
            async with asyncio.timeout(5):
                while not backend.cancelled:  # the runner, wherever it is, sees the cancel
                    await asyncio.sleep(0.02)
            seen = await finished(other, job["id"])
            charged = await spent(one)
    assert cancelled.status_code == 200
    assert seen["status"] == "cancelled"
    assert charged == (0, 0)


async def test_jobs_on_redis_complete_and_are_charged_once_each() -> None:
    backend = ScriptedBackend("runflow")
    with RedisServer() as url:
        settings = {"state_backend": "redis", "redis_url": url}
        async with serving([route_to(backend)], api_keys=KEYS, **settings) as one, \
                serving([route_to(backend)], api_keys=KEYS, **settings) as other:
            jobs = [(await client.post("/v1/images/jobs", json=BODY, headers=ALICE)).json()
                    for client in (one, other, one, other, one, other)]
            done = [await finished(one, job["id"]) for job in jobs]
            charged, held = await spent(other)
    assert [job["status"] for job in done] == ["succeeded"] * 6
    assert len(backend.calls) == 6
    assert charged == sum(Decimal(job["billing"]["cost_usd"]) for job in done)
    assert held == 0
