"""A job's hold held again for less: its first run's lease ran out while that run was still alive
(slow to reach its settle), and the run again on another replica held the same hold at its own,
cheaper route's price. The first run's charge is the one kept for the hold, so that is what either
run settles; meanwhile the key spent the room the lease gave back.

Settling that charge on the smaller hold must not pass the key's budget: the settle is refused
(and so is the other run's), the job ends failed and uncharged, and the key has spent only what
its other request cost.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from core.errors import VendorUnavailable
from proxy.billing import Billing, PendingCharge
from proxy.jobs.book import JobBook
from proxy.jobs.redis_queue import RedisStreamJobQueue
from tests.proxy.api.served_app import Client, serving
from tests.proxy.jobs.test_jobs_api import BODY, finished, spent
from tests.proxy.jobs.test_jobs_restart import charge_log, restartable
from tests.proxy.jobs.test_runs_racing import WITHIN_S, Step
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to

CAROL = {"Authorization": "Bearer bg-carol"}
RUNFLOW_USD, IMAGEAPI_USD = Decimal("0.00405"), Decimal("0.0027")
"""What the client pays for one image by each vendor (the catalog's price, 35% over)."""
BUDGET_USD = 2 * IMAGEAPI_USD
"""Room for two cheap images, or for one pricier one: 0.54 credits."""
KEYS = {"bg-carol": {"name": "carol", "budget_credits": "0.54"}}


@dataclass
class Interleaving:
    """The first run keeps its charge and waits at its settle; the test lets that settle go once
    the other run waits at its own, then the other's once the first run failed or is writing its
    end; the first run's end waits until the other run's settle answered."""

    first_kept: Step = field(default_factory=Step)
    both_at_settle: Step = field(default_factory=Step)
    release_first: Step = field(default_factory=Step)
    first_ending: Step = field(default_factory=Step)
    second_settled: Step = field(default_factory=Step)
    hold_id: list[str] = field(default_factory=list)
    at_settle: list[Billing] = field(default_factory=list)
    first_book: list[JobBook] = field(default_factory=list)


@pytest.fixture
def interleaved(monkeypatch: pytest.MonkeyPatch) -> Interleaving:
    steps = Interleaving()
    keep, settle, finish = JobBook.keep_charge, Billing.settle, JobBook.finish

    async def keeping(self: JobBook, job_id: str, pending: PendingCharge, **kwargs: Any) -> PendingCharge:
        kept = await keep(self, job_id, pending, **kwargs)
        if not steps.first_book:
            steps.first_book.append(self)
            steps.hold_id.append(kept.settlement.reservation.reservation_id)
            steps.first_kept.reach()
        return kept

    async def settling(self: Billing, pending: PendingCharge) -> Any:
        if pending.settlement.reservation.reservation_id not in steps.hold_id:  # another request's
            return await settle(self, pending)
        steps.at_settle.append(self)
        if len(steps.at_settle) == 1:
            await steps.release_first.reached()
            return await settle(self, pending)
        steps.both_at_settle.reach()
        await steps.first_ending.reached()
        try:
            return await settle(self, pending)
        finally:
            steps.second_settled.reach()

    async def finishing(self: JobBook, *args: Any, **kwargs: Any) -> bool:
        if self in steps.first_book:
            steps.first_ending.reach()
            await steps.second_settled.reached()
        return await finish(self, *args, **kwargs)

    monkeypatch.setattr(JobBook, "keep_charge", keeping)
    monkeypatch.setattr(Billing, "settle", settling)
    monkeypatch.setattr(JobBook, "finish", finishing)
    # the first run's keep-alives are late: the queue hands its job to the other replica
    monkeypatch.setattr(RedisStreamJobQueue, "keep_alive", lambda *_: asyncio.sleep(0))
    return steps


async def held(client: Client) -> Decimal:
    return (await spent(client, CAROL))[1]


@asynccontextmanager
async def held_again_for_less(state: dict[str, object], steps: Interleaving) -> AsyncIterator[tuple[Client, str]]:
    """The job submitted to a replica whose cheap route (imageapi) fails, so its run is served by
    runflow, the hold raised to its price with a lease of a second; once that lease ran out, a
    second replica, served by imageapi alone, runs the job again (holding imageapi's price)."""
    settings = restartable(state)
    failing = ScriptedBackend.playing("imageapi", VendorUnavailable("down", status=503))
    async with AsyncExitStack() as apps:
        first = await apps.enter_async_context(serving(
            [route_to(failing, priority=10, max_attempts=1), route_to(ScriptedBackend("runflow"), priority=20)],
            api_keys=KEYS, deadline_s=1.0, reservation_grace_s=0.1, **settings))
        job = (await first.post("/v1/images/jobs", json=BODY, headers=CAROL)).json()
        await steps.first_kept.reached()
        async with asyncio.timeout(WITHIN_S):
            while await held(first) > 0:  # the first run's lease ran out
                await asyncio.sleep(0.02)
        second = await apps.enter_async_context(serving([route_to(ScriptedBackend("imageapi"))], api_keys=KEYS,
                                                        **settings))
        yield second, str(job["id"])


async def test_a_charge_above_the_hold_held_again_is_refused_when_the_budget_has_no_room(
    state: dict[str, object], interleaved: Interleaving
) -> None:
    async with held_again_for_less(state, interleaved) as (second, job_id):
        synchronous = await second.post("/v1/images/generations", json=BODY, headers=CAROL)  # the room given back
        await interleaved.both_at_settle.reached()
        assert await held(second) == IMAGEAPI_USD  # the job's hold, held again at imageapi's price
        interleaved.release_first.reach()
        ended = await finished(second, job_id, CAROL)
        async with asyncio.timeout(WITHIN_S):
            while (charged := await spent(second, CAROL)) != (IMAGEAPI_USD, 0):
                if charged[0] > IMAGEAPI_USD:
                    break
                await asyncio.sleep(0.02)
        logged = await charge_log(second)

    assert synchronous.status_code == 200, synchronous.text
    assert charged[0] <= BUDGET_USD, f"spent {charged[0]} of a budget of {BUDGET_USD}"
    assert ended["status"] == "failed", ended
    assert charged == (IMAGEAPI_USD, 0)
    assert logged == [(IMAGEAPI_USD, 1)]
