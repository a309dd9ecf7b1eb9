"""Two runs of one job alive at once: the queue handed the job out again while its first run was
in fact still going (its keep-alives were late; with SQLite, a second process started on the same
data while the first one still ran). Each run is served by a vendor of its own price and reaches
its charge; the first run's settle lands, the second's finds the hold settled.

Whatever the job then reports as its price, and whatever is taken back when it ends without its
images, must be the charge that landed, to the micro-USD.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from proxy.billing import Billing
from proxy.gateway import Gateway
from proxy.jobs.book import JobBook
from proxy.jobs.redis_queue import RedisStreamJobQueue
from tests.proxy.api.served_app import Client, serving
from tests.proxy.jobs.test_jobs_api import ALICE, BODY, KEYS, finished, spent
from tests.proxy.jobs.test_jobs_restart import charge_log, restartable
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to

WITHIN_S = 10.0


class Step:
    """A point one app's run reaches, waited for by the other app or the test: each app of the
    test client runs on an event loop in a thread of its own."""

    def __init__(self) -> None:
        self._reached = threading.Event()

    def reach(self) -> None:
        self._reached.set()

    async def reached(self) -> None:
        async with asyncio.timeout(WITHIN_S):
            while not self._reached.is_set():
                await asyncio.sleep(0.01)


@dataclass
class Interleaving:
    """The first run keeps its charge; the second run keeps one; the first run's settle lands; the
    second run's settle is sent. Then each run waits, before its answer is remembered (its job's
    end not written yet), until the test releases it."""

    first_kept: Step = field(default_factory=Step)
    second_kept: Step = field(default_factory=Step)
    first_landed: Step = field(default_factory=Step)
    both_settled: Step = field(default_factory=Step)
    release_first: Step = field(default_factory=Step)
    release_second: Step = field(default_factory=Step)
    keeps: Iterator[int] = field(default_factory=itertools.count)
    settles: Iterator[int] = field(default_factory=itertools.count)
    first_billing: list[Billing] = field(default_factory=list)


@pytest.fixture
def interleaved(monkeypatch: pytest.MonkeyPatch) -> Interleaving:
    steps = Interleaving()
    keep, settle, remember = JobBook.keep_charge, Billing.settle, Gateway._remember

    async def keeping(self: JobBook, *args: Any, **kwargs: Any) -> Any:
        kept = await keep(self, *args, **kwargs)
        (steps.first_kept if next(steps.keeps) == 0 else steps.second_kept).reach()
        return kept

    async def settling(self: Billing, *args: Any, **kwargs: Any) -> Any:
        if next(steps.settles) == 0:
            steps.first_billing.append(self)
            await steps.second_kept.reached()
            charged = await settle(self, *args, **kwargs)
            steps.first_landed.reach()
            return charged
        await steps.first_landed.reached()
        charged = await settle(self, *args, **kwargs)
        steps.both_settled.reach()
        return charged

    async def remembering(self: Gateway, *args: Any, **kwargs: Any) -> None:
        await (steps.release_first if self.billing in steps.first_billing else steps.release_second).reached()
        await remember(self, *args, **kwargs)

    monkeypatch.setattr(JobBook, "keep_charge", keeping)
    monkeypatch.setattr(Billing, "settle", settling)
    monkeypatch.setattr(Gateway, "_remember", remembering)
    # the first run's keep-alives are late: the queue hands its job to the other replica
    monkeypatch.setattr(RedisStreamJobQueue, "keep_alive", lambda *_: asyncio.sleep(0))
    return steps


@asynccontextmanager
async def two_runs(state: dict[str, object], steps: Interleaving) -> AsyncIterator[tuple[Client, Client, str]]:
    """Two apps on ``state``, the first served by runflow, the second by imageapi (another
    price), each running one job at a time; a job submitted to the first, run by both."""
    settings = restartable(state)
    async with AsyncExitStack() as apps:
        first = await apps.enter_async_context(serving([route_to(ScriptedBackend("runflow"))], api_keys=KEYS,
                                                       **settings))
        job = (await first.post("/v1/images/jobs", json=BODY, headers=ALICE)).json()
        await steps.first_kept.reached()
        # with SQLite, its start queues the job again (left unacknowledged, as by a lost process)
        second = await apps.enter_async_context(serving([route_to(ScriptedBackend("imageapi"))], api_keys=KEYS,
                                                        **settings))
        yield first, second, str(job["id"])


async def test_the_job_reports_the_price_of_the_charge_that_landed(
    state: dict[str, object], interleaved: Interleaving
) -> None:
    """The second run ends first, with the job's images; the first run's charge is what stands."""
    async with two_runs(state, interleaved) as (first, second, job_id):
        await interleaved.both_settled.reached()
        landed, _ = await spent(first)
        interleaved.release_second.reach()
        ended = await finished(second, job_id)
        interleaved.release_first.reach()
        assert await spent(first) == (landed, 0)
        assert await charge_log(first) == [(landed, 1)]

    assert ended["status"] == "succeeded", ended
    assert ended["served"]["vendor"] == "imageapi"
    assert Decimal(ended["billing"]["cost_usd"]) == landed > 0


async def test_a_job_cancelled_after_both_runs_settled_takes_back_the_charge_that_landed(
    state: dict[str, object], interleaved: Interleaving
) -> None:
    async with two_runs(state, interleaved) as (first, _, job_id):
        await interleaved.both_settled.reached()
        landed, _ = await spent(first)
        assert (await first.delete(f"/v1/images/jobs/{job_id}", headers=ALICE)).status_code == 200
        async with asyncio.timeout(WITHIN_S):
            while len(refunds := await charge_log(first)) < 2:
                await asyncio.sleep(0.02)
        left = await spent(first)
        interleaved.release_first.reach()
        interleaved.release_second.reach()

    assert refunds == [(landed, 1), (-landed, -1)]
    assert left == (0, 0)
    assert landed > 0
