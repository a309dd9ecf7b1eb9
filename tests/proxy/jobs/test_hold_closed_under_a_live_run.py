"""Two runs of one job alive at once (the queue handed the job out again while its first run was
in fact still going), and the first run gives the job's hold back while the second still runs:
its settle went unconfirmed (the store did not answer before its deadline), or it failed before
its settle. Both runs settle the same hold, so the second's settle then finds it closed.

Closed without a charge is not "charged already": whatever the job ends as, a job that ends
with its images is charged for them, and one that ends without them is not.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from core.errors import StateUnavailable
from proxy.billing import Billing
from proxy.gateway import Gateway
from proxy.jobs.book import JobBook
from proxy.jobs.redis_queue import RedisStreamJobQueue
from tests.proxy.api.served_app import Client, serving
from tests.proxy.jobs.test_jobs_api import ALICE, BODY, KEYS, finished, spent
from tests.proxy.jobs.test_jobs_restart import charge_log, restartable
from tests.proxy.jobs.test_runs_racing import WITHIN_S, Step
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to


@dataclass
class Interleaving:
    """The first run waits, before it gives the hold back, until the second run reached its
    charge; the second run's settle waits until the first run is writing its end (every void it
    owes made); the first run's end waits until the second run's end is written."""

    first_at_charge: Step = field(default_factory=Step)
    second_at_charge: Step = field(default_factory=Step)
    first_unconfirmed: Step = field(default_factory=Step)
    second_settled: Step = field(default_factory=Step)
    first_ending: Step = field(default_factory=Step)
    second_ended: Step = field(default_factory=Step)
    first_gateway: list[Gateway] = field(default_factory=list)
    books: list[JobBook] = field(default_factory=list)


def _racing(monkeypatch: pytest.MonkeyPatch, steps: Interleaving) -> None:
    """The two runs' ends in the order above; the first run's keep-alives are late, so the queue
    hands its job to the other replica."""
    finish = JobBook.finish

    async def finishing(self: JobBook, *args: Any, **kwargs: Any) -> bool:
        if self is steps.books[0]:
            async with asyncio.timeout(WITHIN_S):
                while steps.first_gateway and steps.first_gateway[0].unconfirmed.owed:
                    await asyncio.sleep(0.01)
            steps.first_ending.reach()
            await steps.second_ended.reached()
            return await finish(self, *args, **kwargs)
        try:
            return await finish(self, *args, **kwargs)
        finally:
            steps.second_ended.reach()

    monkeypatch.setattr(JobBook, "finish", finishing)
    monkeypatch.setattr(RedisStreamJobQueue, "keep_alive", lambda *_: asyncio.sleep(0))


@pytest.fixture(params=["its void first", "the other settle first"])
def unconfirmed(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Interleaving:
    """The first run's settle goes unconfirmed, landing nothing, once the second run kept its
    charge; then the second run's settle is sent once the first run is writing its end (what the
    first run's gateway voids made first), or, the other order, before anything the first run
    voids is made."""
    steps = Interleaving()
    keep, settle, take_back = JobBook.keep_charge, Gateway._settle, Billing.take_back
    void_first = request.param == "its void first"

    async def keeping(self: JobBook, *args: Any, **kwargs: Any) -> Any:
        steps.books.append(self)
        kept = await keep(self, *args, **kwargs)
        (steps.first_at_charge if len(steps.books) == 1 else steps.second_at_charge).reach()
        return kept

    async def settling(self: Gateway, *args: Any, **kwargs: Any) -> Any:
        if not steps.first_gateway:
            steps.first_gateway.append(self)
            await steps.second_at_charge.reached()
            steps.first_unconfirmed.reach()
            raise StateUnavailable("The state store did not confirm this request's charge before its deadline")
        await (steps.first_ending if void_first else steps.first_unconfirmed).reached()
        try:
            return await settle(self, *args, **kwargs)
        finally:
            steps.second_settled.reach()

    async def taking_back(self: Billing, *args: Any, **kwargs: Any) -> Any:
        if not void_first:
            await steps.second_settled.reached()
        return await take_back(self, *args, **kwargs)

    monkeypatch.setattr(JobBook, "keep_charge", keeping)
    monkeypatch.setattr(Gateway, "_settle", settling)
    monkeypatch.setattr(Billing, "take_back", taking_back)
    _racing(monkeypatch, steps)
    return steps


@pytest.fixture
def released(monkeypatch: pytest.MonkeyPatch) -> Interleaving:
    """The first run fails before its settle (its charge cannot be kept) once the second run
    reached its charge, and its gateway releases the job's hold."""
    steps = Interleaving()
    keep = JobBook.keep_charge

    async def keeping(self: JobBook, *args: Any, **kwargs: Any) -> Any:
        steps.books.append(self)
        if len(steps.books) == 1:
            steps.first_at_charge.reach()
            await steps.second_at_charge.reached()
            raise StateUnavailable("The state store did not answer")
        steps.second_at_charge.reach()
        await steps.first_ending.reached()
        return await keep(self, *args, **kwargs)

    monkeypatch.setattr(JobBook, "keep_charge", keeping)
    _racing(monkeypatch, steps)
    return steps


@asynccontextmanager
async def two_runs(state: dict[str, object], steps: Interleaving) -> AsyncIterator[tuple[Client, str]]:
    """Two apps on ``state``; a job submitted to the first, run by both (the second started once
    the first run reached its charge; with SQLite, its start queues the job again, left
    unacknowledged as by a lost process)."""
    settings = restartable(state)
    async with AsyncExitStack() as apps:
        first = await apps.enter_async_context(serving([route_to(ScriptedBackend("runflow"))], api_keys=KEYS,
                                                       **settings))
        job = (await first.post("/v1/images/jobs", json=BODY, headers=ALICE)).json()
        await steps.first_at_charge.reached()
        await apps.enter_async_context(serving([route_to(ScriptedBackend("imageapi"))], api_keys=KEYS, **settings))
        yield first, str(job["id"])


async def ended_and_paid(client: Client, job_id: str) -> tuple[dict[str, Any], tuple[Decimal, Decimal],
                                                                list[tuple[Decimal, int]]]:
    """The job's end, and the key's spend once nothing is held any more (every run over)."""
    ended = await finished(client, job_id)
    async with asyncio.timeout(WITHIN_S):
        while (paid := await spent(client))[1] != 0:
            await asyncio.sleep(0.02)
    return ended, paid, await charge_log(client)


async def test_a_job_whose_first_run_went_unconfirmed_is_charged_for_the_images_of_the_other(
    state: dict[str, object], unconfirmed: Interleaving
) -> None:
    """The first run's settle landed nothing: the second run's settle of the same kept charge is
    the one charge of the job, whether it comes after the first run's gateway gave the hold back
    (the bug: it was answered "already closed", taken for "charged already") or before (the first
    run's void took it back under the images the second run delivered)."""
    async with two_runs(state, unconfirmed) as (first, job_id):
        ended, paid, logged = await ended_and_paid(first, job_id)

    assert ended["status"] == "succeeded", ended
    price = Decimal(ended["billing"]["cost_usd"])
    assert price > 0
    assert paid == (price, 0), f"the job delivered its images for {price} and the key spent {paid[0]}"
    assert logged == [(price, 1)]


async def test_a_run_whose_hold_another_run_gave_back_does_not_deliver_uncharged(
    state: dict[str, object], released: Interleaving
) -> None:
    """The hold was released without a charge: the second run's settle is no charge, so the run
    does not hand its images over as paid for; the job ends failed and uncharged."""
    async with two_runs(state, released) as (first, job_id):
        ended, paid, logged = await ended_and_paid(first, job_id)

    assert ended["status"] == "failed", f"{ended['status']} with the key charged {paid[0]}"
    assert paid == (0, 0)
    assert logged == []
