"""Jobs across a graceful restart of the app (its lifespan stopped and started again).

SQLite state keeps job records and the unacknowledged ids: ``GET`` answers after the restart,
queued jobs run then, and a job still running at the stop (past ``stop_grace_s``) ends
``failed`` with code ``gateway_stopped``, its credits released. Killed outright instead (no
lifespan), see ``tests/e2e/test_jobs_restart.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from core.errors import VendorUnavailable
from core.state.ledger_store import Voided
from core.state.sqlite_database import SqliteDatabase
from core.state.sqlite_ledger import SqliteLedgerStore
from proxy.gateway import Gateway
from proxy.metrics import REGISTRY
from tests.proxy.api.served_app import serving
from tests.proxy.jobs.test_jobs_api import ALICE, BODY, KEYS, Cancellable, finished, spent, status_becomes
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to
from tests.redis_server import RedisServer


@pytest.fixture(params=["sqlite", "redis"])
def state(request: pytest.FixtureRequest) -> Iterator[dict[str, object]]:
    if request.param == "sqlite":
        yield {"state_backend": "sqlite"}
        return
    with RedisServer() as url:
        yield {"state_backend": "redis", "redis_url": url, "jobs": {"stop_grace_s": 0, "reclaim_idle_s": 0.3}}


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


async def stopped_after_its_charge(settings: dict[str, object],
                                   monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, object], Decimal]:
    """A job submitted to an app stopped while its run is charged and remembering its answer
    never ends (a stop, or a kill, between the two); the job and what it was charged."""
    charged_once = asyncio.Event()

    async def remember_never(*_: object) -> None:
        charged_once.set()
        await asyncio.Event().wait()

    with monkeypatch.context() as patched:
        patched.setattr(Gateway, "_remember", remember_never)
        async with serving([route_to(ScriptedBackend("runflow"))], api_keys=KEYS, **settings) as client:
            job: dict[str, object] = (await client.post("/v1/images/jobs", json=BODY, headers=ALICE)).json()
            async with asyncio.timeout(10):
                await charged_once.wait()
            charged, _ = await spent(client)
    return job, charged


async def test_a_run_stopped_after_its_charge_is_run_again_uncharged_and_succeeds(
    state: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stop lands between the charge and the run's end (here: remembering its answer never
    ends). The job was paid for, so it must not end failed: the next start runs it again on the
    settled hold, without a second charge, and it succeeds."""
    jobs = {"concurrency": 1, "stop_grace_s": 0, "reclaim_idle_s": 0.3}
    settings = {**state, "jobs": jobs}
    job, charged = await stopped_after_its_charge(settings, monkeypatch)

    again = ScriptedBackend("runflow")
    async with serving([route_to(again)], api_keys=KEYS, **settings) as client:
        ended = await finished(client, job["id"])
        assert await spent(client) == (charged, 0)

    assert charged > 0
    assert ended["status"] == "succeeded", ended
    assert len(again.calls) == 1


async def test_a_run_whose_lost_run_gave_its_hold_back_holds_afresh_and_is_charged_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lost run's charge was taken back (a void), or its hold released, before its end was
    written: the hold is closed for good, so the run again holds anew instead of failing 402."""
    settings = {"state_backend": "sqlite", "data_dir": str(tmp_path),
                "jobs": {"concurrency": 1, "stop_grace_s": 0, "reclaim_idle_s": 0.3}}
    job, first_charge = await stopped_after_its_charge(settings, monkeypatch)

    book = SqliteLedgerStore(SqliteDatabase.in_directory(tmp_path))
    (hold_id,), = book.database.connection.execute("SELECT marker FROM closed WHERE kind = 'settled'").fetchall()
    key_id = book.database.connection.execute("SELECT account FROM spent WHERE amount > 0").fetchone()[0]
    assert await book.void(key_id, hold_id, int(first_charge * 10**6)) is Voided.REFUNDED
    await book.aclose()

    async with serving([route_to(ScriptedBackend("runflow"))], api_keys=KEYS, **settings) as client:
        ended = await finished(client, job["id"])
        assert ended["status"] == "succeeded", ended
        assert await spent(client) == (Decimal(ended["billing"]["cost_usd"]), 0)


async def test_a_run_on_an_earlier_charge_that_fails_is_logged_for_an_operator_to_refund(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """What a run again on a lost run's charge cannot undo (that run's exact charge went with
    it) when it fails too: the job fails, and the charge is named for a refund by hand."""
    settings = {"state_backend": "sqlite", "data_dir": str(tmp_path),
                "jobs": {"concurrency": 1, "stop_grace_s": 0, "reclaim_idle_s": 0.3}}
    job, charged = await stopped_after_its_charge(settings, monkeypatch)

    down = ScriptedBackend.playing("runflow", *[VendorUnavailable("down", status=503)] * 3)
    counted = REGISTRY.get_sample_value("boltgate_jobs_charged_without_images_total") or 0.0
    with caplog.at_level(logging.ERROR, logger="proxy.jobs.runner"):
        async with serving([route_to(down)], api_keys=KEYS, **settings) as client:
            ended = await finished(client, job["id"])
            assert await spent(client) == (charged, 0)

    assert ended["status"] == "failed"
    (named,) = [r.getMessage() for r in caplog.records if "refund it by hand" in r.getMessage()]
    assert str(job["id"]) in named
    assert REGISTRY.get_sample_value("boltgate_jobs_charged_without_images_total") == counted + 1
