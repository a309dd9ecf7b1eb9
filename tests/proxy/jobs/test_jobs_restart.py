"""Jobs across a graceful restart of the app (its lifespan stopped and started again).

SQLite state keeps job records and the unacknowledged ids: ``GET`` answers after the restart,
queued jobs run then, and a job still running at the stop (past ``stop_grace_s``) ends
``failed`` with code ``gateway_stopped``, its credits released. Killed outright instead (no
lifespan), see ``tests/e2e/test_jobs_restart.py``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio

from core.errors import VendorUnavailable
from core.state.ledger_store import LedgerStore, Voided
from core.state.redis import RedisStateStore
from core.state.redis_ledger import RedisLedgerStore
from core.state.sqlite import SqliteStateStore
from core.state.sqlite_database import SqliteDatabase
from core.state.sqlite_ledger import SqliteLedgerStore
from pricing.money import to_micro_usd
from proxy.gateway import Gateway
from proxy.jobs.book import JobBook
from proxy.jobs.record import JobEnd
from proxy.metrics import REGISTRY
from tests.proxy.api.across_loops import EventAcrossLoops
from tests.proxy.api.served_app import Client, serving
from tests.proxy.jobs.test_jobs_api import ALICE, BOB, BODY, KEYS, Cancellable, finished, spent, status_becomes
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to
from tests.redis_server import RedisServer


@contextmanager
def state_settings(backend: str, **on_redis: object) -> Iterator[dict[str, object]]:
    """The settings of a job test's state store: SQLite, or a real Redis started for the test
    (with ``on_redis`` settings besides)."""
    if backend == "sqlite":
        yield {"state_backend": "sqlite"}
        return
    with RedisServer() as url:
        yield {"state_backend": "redis", "redis_url": url, **on_redis}


@pytest.fixture(params=["sqlite", "redis"])
def state(request: pytest.FixtureRequest) -> Iterator[dict[str, object]]:
    with state_settings(request.param, jobs={"stop_grace_s": 0, "reclaim_idle_s": 0.3}) as settings:
        yield settings


ADMIN = {"Authorization": "Bearer admin-secret"}
JOBS = {"concurrency": 1, "stop_grace_s": 0, "reclaim_idle_s": 0.3}


def restartable(state: dict[str, object]) -> dict[str, object]:
    """The app's settings for these tests: ``state``, one job at a time, an admin token."""
    return {**state, "jobs": JOBS, "admin_token": "admin-secret"}


async def charge_log(client: Client) -> list[tuple[Decimal, int]]:
    """The charge log's lines as (the client's price, images), oldest first."""
    answer = await client.get("/v1/admin/charges", params={"since": "2000-01-01"}, headers=ADMIN)
    return [(Decimal(line["client_usd"]), line["images"]) for line in answer.json()["data"]]


async def uncharged(client: Client) -> None:
    """Wait until Alice's key has nothing spent and nothing held."""
    async with asyncio.timeout(10):
        while await spent(client) != (0, 0):
            await asyncio.sleep(0.02)


@asynccontextmanager
async def state_of(settings: dict[str, Any]) -> AsyncIterator[SqliteStateStore | RedisStateStore]:
    """The state store the app wrote (opened while no app runs)."""
    store: SqliteStateStore | RedisStateStore
    if settings["state_backend"] == "redis":
        store = RedisStateStore.from_url(settings["redis_url"])
    else:
        store = SqliteStateStore(SqliteDatabase.in_directory(Path(os.environ["BOLTGATE_DATA_DIR"])))
    try:
        yield store
    finally:
        await store.aclose()


@asynccontextmanager
async def records_of(settings: dict[str, Any]) -> AsyncIterator[JobBook]:
    """The job records the app wrote (opened while no app runs)."""
    async with state_of(settings) as store:
        yield JobBook(store, retention_s=3600)


@asynccontextmanager
async def ledger_of(settings: dict[str, Any]) -> AsyncIterator[LedgerStore]:
    """The ledger store the app wrote (opened while no app runs)."""
    book: LedgerStore
    if settings["state_backend"] == "redis":
        book = RedisLedgerStore(redis.asyncio.Redis.from_url(settings["redis_url"]))
    else:
        book = SqliteLedgerStore(SqliteDatabase.in_directory(Path(os.environ["BOLTGATE_DATA_DIR"])))
    try:
        yield book
    finally:
        await book.aclose()


async def test_queued_jobs_run_after_a_restart_and_a_stopped_run_fails_uncharged(state: dict[str, object]) -> None:
    jobs = {"concurrency": 1, "stop_grace_s": 0, "reclaim_idle_s": 0.3}
    settings = {**state, "jobs": jobs}
    async with serving([route_to(Cancellable("runflow"))], api_keys=KEYS, **settings) as client:
        running = (await client.post("/v1/images/jobs", json=BODY, headers=ALICE)).json()
        queued = (await client.post("/v1/images/jobs", json=BODY, headers=ALICE)).json()
        await status_becomes(client, running["id"], "running")

    served = ScriptedBackend("runflow")
    async with serving([route_to(served)], api_keys=KEYS, **settings) as client:
        stopped = await finished(client, running["id"])
        ran = await finished(client, queued["id"])
        charged, held = await spent(client)

    assert stopped["status"] == "failed"
    assert stopped["error"]["code"] == "gateway_stopped"
    assert ran["status"] == "succeeded"
    assert len(served.calls) == 1  # the stopped job is not run again
    assert (charged, held) == (Decimal(ran["billing"]["cost_usd"]), 0)


async def stopped_after_its_charge(settings: dict[str, object], monkeypatch: pytest.MonkeyPatch, *,
                                   submit: bool = True) -> tuple[dict[str, object], Decimal]:
    """An app stopped while a job's run is charged and remembering its answer never ends (a
    stop, or a kill, between the two); the job it was submitted (``submit``: else the one left
    by an earlier life, its run again; none is returned) and what Alice's key was charged."""
    charged_once = EventAcrossLoops()  # set on the app's loop, awaited on the test's

    async def remember_never(*_: object) -> None:
        charged_once.set()
        await asyncio.Event().wait()

    job: dict[str, object] = {}
    with monkeypatch.context() as patched:
        patched.setattr(Gateway, "_remember", remember_never)
        async with serving([route_to(ScriptedBackend("runflow"))], api_keys=KEYS, **settings) as client:
            if submit:
                job = (await client.post("/v1/images/jobs", json=BODY, headers=ALICE)).json()
            await charged_once.wait()
            charged, _ = await spent(client)
    return job, charged


async def test_a_run_stopped_after_its_charge_is_run_again_uncharged_and_succeeds(
    state: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stop lands between the charge and the run's end (here: remembering its answer never
    ends). The job was paid for, so it must not end failed: the next start runs it again on the
    settled hold, without a second charge, and it succeeds."""
    settings = restartable(state)
    job, charged = await stopped_after_its_charge(settings, monkeypatch)

    again = ScriptedBackend("runflow")
    async with serving([route_to(again)], api_keys=KEYS, **settings) as client:
        ended = await finished(client, job["id"])
        assert await spent(client) == (charged, 0)

    assert charged > 0
    assert ended["status"] == "succeeded", ended
    assert len(again.calls) == 1


async def take_back_behind_its_back(data_dir: Path, charged: Decimal) -> None:
    """Void the lost run's charge in the SQLite ledger under ``data_dir`` (no app running), as
    an earlier life's void would have: its hold is then closed for good."""
    book = SqliteLedgerStore(SqliteDatabase.in_directory(data_dir))
    (hold_id,), = book.database.connection.execute("SELECT marker FROM closed WHERE kind = 'settled'").fetchall()
    key_id = book.database.connection.execute("SELECT account FROM spent WHERE amount > 0").fetchone()[0]
    assert await book.void(key_id, hold_id, int(charged * 10**6)) is Voided.REFUNDED
    await book.aclose()


async def test_a_run_whose_lost_run_gave_its_hold_back_holds_afresh_and_is_charged_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lost run's charge was taken back (a void), or its hold released, before its end was
    written: the hold is closed for good, so the run again holds anew instead of failing 402."""
    settings = {"state_backend": "sqlite", "data_dir": str(tmp_path),
                "jobs": {"concurrency": 1, "stop_grace_s": 0, "reclaim_idle_s": 0.3}}
    job, first_charge = await stopped_after_its_charge(settings, monkeypatch)

    await take_back_behind_its_back(tmp_path, first_charge)

    async with serving([route_to(ScriptedBackend("runflow"))], api_keys=KEYS, **settings) as client:
        ended = await finished(client, job["id"])
        assert ended["status"] == "succeeded", ended
        assert await spent(client) == (Decimal(ended["billing"]["cost_usd"]), 0)


async def test_a_charge_on_a_fresh_hold_counts_as_the_jobs_and_is_taken_back_when_the_job_is_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run again on a fresh hold (the job's own was given back) is charged and lost too: that
    charge is the job's, so the stop leaves the job to be run again rather than failing it with
    the charge standing, and the job, lost once too often, ends uncharged."""
    settings = restartable({"state_backend": "sqlite", "data_dir": str(tmp_path)})
    job, first_charge = await stopped_after_its_charge(settings, monkeypatch)
    await take_back_behind_its_back(tmp_path, first_charge)
    _, second_charge = await stopped_after_its_charge(settings, monkeypatch, submit=False)

    async with serving([route_to(ScriptedBackend("runflow"))], api_keys=KEYS, **settings) as client:
        ended = await finished(client, str(job["id"]))
        await uncharged(client)
        # the first charge's line, its void by hand wrote no refund line; then the second's, taken back
        assert await charge_log(client) == [(first_charge, 1), (second_charge, 1), (-second_charge, -1)]

    assert second_charge > 0
    assert ended["status"] == "failed" and ended["error"]["code"] == "job_lost", ended


async def test_a_run_again_on_an_earlier_charge_that_fails_on_every_route_ends_failed_and_uncharged(
    state: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lost run's charge stands only for images: when the run again fails too, the job ends
    failed and that charge is taken back (a refund line in the charge log), once."""
    settings = restartable(state)
    job, charged = await stopped_after_its_charge(settings, monkeypatch)

    async with ledger_of(settings) as book:
        losses_before = (await book.table("losses:vendor_usd")).get("runflow", 0)
    down = ScriptedBackend.playing("runflow", *[VendorUnavailable("down", status=503)] * 3)
    async with serving([route_to(down)], api_keys=KEYS, **settings) as client:
        ended = await finished(client, job["id"])
        await uncharged(client)
        assert await charge_log(client) == [(charged, 1), (-charged, -1)]
        logged = await client.get("/v1/admin/charges", params={"since": "2000-01-01"}, headers=ADMIN)
        lost_run_cost = Decimal(logged.json()["data"][0]["catalog_cost_usd"])
    async with ledger_of(settings) as book:
        losses = (await book.table("losses:vendor_usd")).get("runflow", 0)

    assert charged > 0
    assert ended["status"] == "failed", ended
    assert "data" not in ended and "billing" not in ended
    assert losses - losses_before == to_micro_usd(lost_run_cost) > 0  # the lost run's images, once


async def test_a_run_again_on_an_earlier_charge_cancelled_by_its_owner_ends_uncharged(
    state: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = restartable(state)
    job, charged = await stopped_after_its_charge(settings, monkeypatch)

    async with serving([route_to(Cancellable("runflow"))], api_keys=KEYS, **settings) as client:
        await status_becomes(client, str(job["id"]), "running")
        assert (await client.delete(f"/v1/images/jobs/{job['id']}", headers=ALICE)).status_code == 200
        await uncharged(client)
        assert await charge_log(client) == [(charged, 1), (-charged, -1)]
        assert (await finished(client, str(job["id"])))["status"] == "cancelled"


async def test_a_job_charged_then_lost_until_its_last_run_fails_uncharged(
    state: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Charged on its first run, and its run again lost too (stopped before its end was written):
    the third hand-out fails the job (``MAX_RUNS``), and takes the charge back."""
    settings = restartable(state)
    job, charged = await stopped_after_its_charge(settings, monkeypatch)
    again, charged_again = await stopped_after_its_charge(settings, monkeypatch, submit=False)
    assert (again, charged_again) == ({}, charged)  # nothing charged twice

    async with serving([route_to(ScriptedBackend("runflow"))], api_keys=KEYS, **settings) as client:
        ended = await finished(client, str(job["id"]))
        await uncharged(client)
        assert await charge_log(client) == [(charged, 1), (-charged, -1)]

    assert ended["status"] == "failed"
    assert ended["error"]["code"] == "job_lost"


async def test_a_run_again_on_an_earlier_charge_reports_that_charge_and_books_its_own_vendor_as_a_loss(
    state: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run again is served by another, cheaper vendor: the job reports what it was charged
    (the lost run's price), and what the second vendor cost is the gateway's loss."""
    settings = restartable(state)
    job, charged = await stopped_after_its_charge(settings, monkeypatch)
    async with ledger_of(settings) as book:
        losses_before = await book.table("losses:vendor_usd")

    cheaper = ScriptedBackend("imageapi")
    async with serving([route_to(cheaper)], api_keys=KEYS, **settings) as client:
        ended = await finished(client, str(job["id"]))
        own_price = (await client.post("/v1/images/generations", json=BODY, headers=BOB)).headers["x-boltgate-cost-usd"]
        assert await spent(client) == (charged, 0)
        assert await charge_log(client) == [(charged, 1), (Decimal(own_price), 1)]  # the job's, then Bob's
    async with ledger_of(settings) as book:
        losses = await book.table("losses:vendor_usd")

    assert ended["status"] == "succeeded", ended
    assert Decimal(own_price) != charged
    assert Decimal(ended["billing"]["cost_usd"]) == charged
    assert len(cheaper.calls) == 2  # the job's run again, and Bob's request
    assert losses.get("imageapi", 0) > losses_before.get("imageapi", 0)


async def test_a_job_cancelled_while_it_waits_for_its_run_again_ends_uncharged(
    state: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cancel lands while no process runs the job (its owner cancels through another replica
    between the lost run and the run again): the next runner finds it ended, and uncharges it."""
    settings = restartable(state)
    job, charged = await stopped_after_its_charge(settings, monkeypatch)
    async with records_of(settings) as records:
        assert await records.finish(str(job["id"]), JobEnd("cancelled"))

    again = ScriptedBackend("runflow")
    async with serving([route_to(again)], api_keys=KEYS, **settings) as client:
        await uncharged(client)
        assert await charge_log(client) == [(charged, 1), (-charged, -1)]
        assert (await finished(client, str(job["id"])))["status"] == "cancelled"
    assert again.calls == []


async def test_a_run_again_whose_kept_charge_is_missing_fails_and_is_logged_for_an_operator_to_refund(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A job whose record keeps no charge (submitted before runs kept theirs) cannot have that
    charge taken back when its run again fails: the job fails, and the charge is named for a
    refund by hand, and counted (``BoltgateJobChargedWithoutImages``)."""
    settings = restartable({"state_backend": "sqlite", "data_dir": str(tmp_path)})
    job, charged = await stopped_after_its_charge(settings, monkeypatch)
    records = SqliteStateStore(SqliteDatabase.in_directory(tmp_path))
    assert await records.get(f"job:{job['id']}:charge") is not None
    await records.delete(f"job:{job['id']}:charge")
    await records.aclose()

    down = ScriptedBackend.playing("runflow", *[VendorUnavailable("down", status=503)] * 3)
    counted = REGISTRY.get_sample_value("boltgate_jobs_charged_without_images_total") or 0.0
    with caplog.at_level(logging.ERROR, logger="proxy.jobs.uncharge"):
        async with serving([route_to(down)], api_keys=KEYS, **settings) as client:
            ended = await finished(client, str(job["id"]))
            assert await spent(client) == (charged, 0)

    assert ended["status"] == "failed"
    (named,) = [r.getMessage() for r in caplog.records if "refund it by hand" in r.getMessage()]
    assert str(job["id"]) in named
    assert REGISTRY.get_sample_value("boltgate_jobs_charged_without_images_total") == counted + 1
