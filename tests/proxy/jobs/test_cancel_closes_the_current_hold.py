"""A cancel closes the hold a job's run is charged on now, whichever of the job's holds that is.

A job's run is charged on its current hold (``proxy.jobs.holds``): the one placed at submit, or,
once a run closed that one without a charge standing (here: a lost run's charge was taken back
before its end was written), the next, ``<id>.1``, which the run again holds. The cancel reaches
the run late: it came through a replica that does not run the job, and the replica that does has
not read the job's end yet (its keep-alive reads it every ``reclaim_idle_s / 3``; here it never
stops the run).

What the cancel promises (README, "Async jobs"): its hold is released at once, so nothing is
charged, even if the vendor finishes a moment later. So when the cancel answers, nothing is held
or charged for the job: a settle the run sends after it finds the hold closed and charges nothing
(the bug: the cancel released only the first hold, so a settle on ``.1`` landed, and the job was
charged until its run's end took the charge back), and a charge that landed before it is taken
back by the cancel itself, once. And a run again that looks for the job's hold only after the
cancel closed it (it read the job's end before the cancel) takes no hold after it to charge.

And the run's vendor cost, paid and never charged, is the gateway's loss exactly once, whether
the cancel took the run's kept charge back (its settle in flight) or closed the hold before the
run kept one (its settle then finds the hold closed: the bug, nothing booked it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import pytest

from core.errors import ReservationReleased
from core.state.ledger_store import Voided
from pricing.money import to_micro_usd
from proxy.billing import Billing, PendingCharge
from proxy.gateway import Gateway
from proxy.jobs import runner
from proxy.jobs.book import JobBook
from proxy.jobs.record import JobEnd
from proxy.jobs.runner import JobRunner
from proxy.metrics import REGISTRY
from tests.proxy.api.across_loops import EventAcrossLoops
from tests.proxy.api.served_app import Client, serving
from tests.proxy.jobs.test_jobs_api import ALICE, BODY, KEYS, finished, spent
from tests.proxy.jobs.test_jobs_restart import (
    charge_log,
    ledger_of,
    records_of,
    restartable,
    stopped_after_its_charge,
    uncharged,
)
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to


@pytest.fixture(params=[0, 1], ids=["on its first hold", "on its next hold"])
def hold(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
def not_stopped_by_the_cancel(monkeypatch: pytest.MonkeyPatch) -> None:
    """The run is not stopped by the cancel: it came through another replica, and the running one
    has not read the job's end yet."""
    monkeypatch.setattr(JobRunner, "cancel_here", lambda self, job_id: None)


async def first_hold_given_back(settings: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> tuple[str, Decimal]:
    """A job whose first run was charged and lost before its end was written, that charge then
    taken back (a void, as a lost run's own would): the first hold is closed for good, so the run
    again holds the job's next one. The job's id and what the lost run was charged."""
    job, charged = await stopped_after_its_charge(settings, monkeypatch)
    job_id = str(job["id"])
    async with records_of(settings) as records:
        record = await records.get(job_id)
    assert record is not None
    async with ledger_of(settings) as book:
        voided = await book.void(record.key_id, record.held.reservation_id, to_micro_usd(charged))
    assert voided is Voided.REFUNDED
    return job_id, charged


@asynccontextmanager
async def running(state: dict[str, object], hold: int, monkeypatch: pytest.MonkeyPatch,
                  patch: Any) -> AsyncIterator[tuple[Client, str, list[tuple[Decimal, int]]]]:
    """An app running a job on its hold number ``hold``, with ``patch`` applied once the job is
    there; the app, the job's id, and the charge log's lines from before this run."""
    settings = restartable(state)
    job_id, earlier = "", []
    if hold:
        job_id, charged = await first_hold_given_back(settings, monkeypatch)
        earlier = [(charged, 1)]  # the lost run's line: its void by hand wrote no refund line
    patch()
    async with serving([route_to(ScriptedBackend("runflow"))], api_keys=KEYS, **settings) as client:
        if not hold:
            job_id = str((await client.post("/v1/images/jobs", json=BODY, headers=ALICE)).json()["id"])
        yield client, job_id, earlier


def held_on(pending: PendingCharge, hold: int) -> bool:
    """Whether ``pending`` is the job's charge on its hold number ``hold``."""
    reservation_id = pending.settlement.reservation.reservation_id
    return reservation_id.endswith(".1") if hold else "." not in reservation_id


def run_end(monkeypatch: pytest.MonkeyPatch) -> tuple[EventAcrossLoops, Callable[[], None]]:
    """An event set once a job's run has ended (``JobRunner._settle_up`` returned or raised), and
    what installs the watch (at the moment the test chooses: ``running``'s ``patch``)."""
    settle_up, ended = JobRunner._settle_up, EventAcrossLoops()

    async def settling_up(self: JobRunner, *args: Any, **kwargs: Any) -> Any:
        try:
            return await settle_up(self, *args, **kwargs)
        finally:
            ended.set()

    return ended, lambda: monkeypatch.setattr(JobRunner, "_settle_up", settling_up)


def runflow_loss_usd() -> float:
    """What the gateway booked as its loss to the vendor that serves these jobs, so far."""
    return REGISTRY.get_sample_value("boltgate_gateway_loss_usd_total", {"backend": "runflow"}) or 0.0


async def cancel(client: Client, job_id: str) -> tuple[int, str, tuple[Decimal, Decimal]]:
    """Cancel the job: the answer's status code, the job's status, and the key's spend and holds
    as soon as the cancel answered."""
    answer = await client.delete(f"/v1/images/jobs/{job_id}", headers=ALICE)
    return answer.status_code, answer.json()["status"], await spent(client)


@pytest.mark.usefixtures("not_stopped_by_the_cancel")
async def test_a_settle_sent_after_the_cancel_charges_nothing(
    state: dict[str, object], hold: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    at_settle, let_settle, settled = EventAcrossLoops(), EventAcrossLoops(), EventAcrossLoops()
    outcomes: list[str] = []
    sent: list[PendingCharge] = []
    settle = Billing.settle

    async def settling(self: Billing, pending: PendingCharge) -> Any:
        if not held_on(pending, hold):
            return await settle(self, pending)
        sent.append(pending)
        at_settle.set()
        await let_settle.wait()
        try:
            charge = await settle(self, pending)
        except ReservationReleased:
            outcomes.append("closed without a charge")
            raise
        finally:
            settled.set()
        outcomes.append("charged")
        return charge

    run_ended, watch_the_run_end = run_end(monkeypatch)
    losses_before: list[float] = []

    def patch() -> None:
        monkeypatch.setattr(Billing, "settle", settling)
        watch_the_run_end()
        losses_before.append(runflow_loss_usd())

    async with running(state, hold, monkeypatch, patch) as (client, job_id, earlier):
        await at_settle.wait()
        code, status, when_cancelled = await cancel(client, job_id)
        let_settle.set()
        await settled.wait()
        await run_ended.wait()
        await uncharged(client)
        logged = await charge_log(client)
        ended = await finished(client, job_id)

    assert (code, status) == (200, "cancelled")
    assert when_cancelled == (0, 0), f"spent and held {when_cancelled} once the cancel answered"
    assert outcomes == ["closed without a charge"]
    assert logged == earlier, "the cancelled job was charged, then refunded"
    assert ended["status"] == "cancelled" and "data" not in ended
    [pending] = sent
    assert runflow_loss_usd() - losses_before[0] == pytest.approx(float(pending.charge.upstream_usd))


@pytest.mark.usefixtures("not_stopped_by_the_cancel")
async def test_a_cancel_that_closes_the_hold_before_the_run_keeps_its_charge_books_that_runs_vendor_as_a_loss_once(
    state: dict[str, object], hold: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The vendor has delivered and the run is about to keep its charge when the cancel lands: the
    cancel finds no charge kept and releases the hold, so the run's settle finds it closed. The
    job is charged nothing, and the run's vendor cost is booked once: by the run (before, by
    no one); the run's end, taking back nothing, books nothing more."""
    at_keep, let_keep = EventAcrossLoops(), EventAcrossLoops()
    run_ended, watch_the_run_end = run_end(monkeypatch)
    kept: list[PendingCharge] = []
    losses_before: list[float] = []
    keep = JobBook.keep_charge

    async def keeping(self: JobBook, job_id: str, pending: PendingCharge, **kwargs: Any) -> PendingCharge:
        if held_on(pending, hold):
            kept.append(pending)
            at_keep.set()
            await let_keep.wait()
        return await keep(self, job_id, pending, **kwargs)

    def patch() -> None:
        monkeypatch.setattr(JobBook, "keep_charge", keeping)
        watch_the_run_end()
        losses_before.append(runflow_loss_usd())

    async with running(state, hold, monkeypatch, patch) as (client, job_id, earlier):
        await at_keep.wait()
        code, status, when_cancelled = await cancel(client, job_id)
        let_keep.set()
        await run_ended.wait()
        after_the_run = await spent(client)
        logged = await charge_log(client)
        ended = await finished(client, job_id)

    assert (code, status) == (200, "cancelled")
    assert when_cancelled == (0, 0) and after_the_run == (0, 0)
    assert logged == earlier
    assert ended["status"] == "cancelled" and "data" not in ended
    [pending] = kept
    assert runflow_loss_usd() - losses_before[0] == pytest.approx(float(pending.charge.upstream_usd))


@pytest.mark.usefixtures("not_stopped_by_the_cancel")
async def test_a_charge_that_landed_before_the_cancel_is_taken_back_by_the_cancel_once(
    state: dict[str, object], hold: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run settled, and its end is not written yet (remembering its answer waits): the cancel
    wins, so the job ends without its images, and the cancel takes the charge back before it
    answers; the run's end, which loses to the cancel, takes nothing back again."""
    charged, let_end = EventAcrossLoops(), EventAcrossLoops()
    run_ended, watch_the_run_end = run_end(monkeypatch)
    remember = Gateway._remember

    async def remembering(self: Gateway, *args: Any, **kwargs: Any) -> None:
        charged.set()
        await let_end.wait()
        await remember(self, *args, **kwargs)

    def patch() -> None:
        monkeypatch.setattr(Gateway, "_remember", remembering)
        watch_the_run_end()

    async with running(state, hold, monkeypatch, patch) as (client, job_id, earlier):
        await charged.wait()
        price, _ = await spent(client)
        code, status, when_cancelled = await cancel(client, job_id)
        let_end.set()
        await run_ended.wait()
        after_the_run = await spent(client)
        logged = await charge_log(client)
        ended = await finished(client, job_id)

    assert price > 0
    assert (code, status) == (200, "cancelled")
    assert when_cancelled == (0, 0), f"spent and held {when_cancelled} once the cancel answered"
    assert after_the_run == (0, 0)
    assert logged == [*earlier, (price, 1), (-price, -1)]  # one refund line, not two
    assert ended["status"] == "cancelled" and "data" not in ended


@pytest.mark.usefixtures("not_stopped_by_the_cancel")
async def test_a_run_again_that_finds_its_hold_after_the_cancel_closed_it_charges_nothing(
    state: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lost run's charge stands on the first hold; its run again read the job's end (none
    yet), then the cancel took that charge back (the hold closed without a charge), and only then
    does the run again look for the job's hold: it must not take the next one and be charged
    there for a job cancelled before."""
    settings = restartable(state)
    job, charged = await stopped_after_its_charge(settings, monkeypatch)
    looking, cancelled = EventAcrossLoops(), EventAcrossLoops()
    find = runner.current_hold
    run_ended, watch_the_run_end = run_end(monkeypatch)
    settled: list[str] = []
    settle = Billing.settle

    async def finding(*args: Any, **kwargs: Any) -> Any:
        if not looking.is_set():  # the run again's look, in ``_serve``
            looking.set()
            await cancelled.wait()
        return await find(*args, **kwargs)

    async def settling(self: Billing, pending: PendingCharge) -> Any:
        settled.append(pending.settlement.reservation.reservation_id)
        return await settle(self, pending)

    monkeypatch.setattr(runner, "current_hold", finding)
    monkeypatch.setattr(Billing, "settle", settling)
    watch_the_run_end()
    async with serving([route_to(ScriptedBackend("runflow"))], api_keys=KEYS, **settings) as client:
        await looking.wait()
        code, status, when_cancelled = await cancel(client, str(job["id"]))
        cancelled.set()
        await run_ended.wait()
        after_the_run = await spent(client)
        logged = await charge_log(client)
    async with records_of(settings) as records:
        end = await records.end(str(job["id"]))

    assert charged > 0
    assert (code, status) == (200, "cancelled")
    assert when_cancelled == (0, 0)
    assert settled == [], f"a cancelled job's run again settled {settled}"
    assert after_the_run == (0, 0)
    assert logged == [(charged, 1), (-charged, -1)]
    assert end is not None and end == JobEnd("cancelled", finished=end.finished)


async def test_a_job_cancelled_through_a_replica_while_it_waits_for_its_run_again_is_uncharged_at_once(
    state: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lost run's charge stands and no process runs the job yet (the replica that will is
    waiting for the lost run's entry to go idle): the cancel answers with the job uncharged, not
    once some runner hands the job out again."""
    settings = restartable(state)
    job, charged = await stopped_after_its_charge(settings, monkeypatch)
    monkeypatch.setattr(JobBook, "get", _never_handed_out(JobBook.get))
    async with serving([route_to(ScriptedBackend("runflow"))], api_keys=KEYS, **settings) as client:
        code, status, when_cancelled = await cancel(client, str(job["id"]))
        logged = await charge_log(client)

    assert charged > 0
    assert (code, status) == (200, "cancelled")
    assert when_cancelled == (0, 0)
    assert logged == [(charged, 1), (-charged, -1)]


def _never_handed_out(get: Any) -> Any:
    """``JobBook.get`` for everyone but the runner: its run again never starts."""

    async def getting(self: JobBook, job_id: str) -> Any:
        task = asyncio.current_task()
        if task is not None and task.get_name().startswith("job "):
            await asyncio.Event().wait()
        return await get(self, job_id)

    return getting
