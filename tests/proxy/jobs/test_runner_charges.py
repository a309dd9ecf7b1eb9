"""A job is charged only for the images it ends with: a cancel that wins over a run already
charged takes that charge back (the charge the run kept, voided: a refund line, once); a run
whose charge could not be kept fails uncharged, and what its vendor cost is the gateway's loss."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from core.errors import StateUnavailable
from proxy.billing import PendingCharge
from proxy.gateway import Gateway
from proxy.jobs.book import JobBook
from proxy.metrics import REGISTRY
from tests.proxy.api.across_loops import EventAcrossLoops
from tests.proxy.api.served_app import serving
from tests.proxy.jobs.test_jobs_api import ALICE, BODY, KEYS, finished, spent
from tests.proxy.jobs.test_jobs_restart import charge_log, uncharged
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to


async def test_a_job_cancelled_after_its_run_was_charged_ends_cancelled_and_uncharged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    charged_once = EventAcrossLoops()  # set on the app's loop, awaited on the test's

    async def remember_slowly(*_: object) -> None:  # the run is charged, its end not yet written
        charged_once.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(Gateway, "_remember", remember_slowly)
    async with serving([route_to(ScriptedBackend("runflow"))], api_keys=KEYS, admin_token="admin-secret") as client:
        job = (await client.post("/v1/images/jobs", json=BODY, headers=ALICE)).json()
        await charged_once.wait()
        charged, _ = await spent(client)
        assert (await client.delete(f"/v1/images/jobs/{job['id']}", headers=ALICE)).status_code == 200
        await uncharged(client)
        ended = await finished(client, job["id"])
        assert await charge_log(client) == [(charged, 1), (-charged, -1)]

    assert charged > 0
    assert ended["status"] == "cancelled" and "data" not in ended


async def test_a_run_whose_charge_could_not_be_kept_fails_uncharged_and_its_vendor_is_booked_as_a_loss_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The store raised as the run kept its charge: nothing is settled, the hold is given back,
    and the vendor, paid for images nobody is charged for, is the gateway's loss (booked in the
    ledger, which is what moves ``boltgate_gateway_loss_usd_total``), once, though the job's end
    then closes its hold again."""
    tried: list[PendingCharge] = []

    async def keep_fails(self: JobBook, job_id: str, pending: PendingCharge, **_: Any) -> PendingCharge:
        tried.append(pending)
        raise StateUnavailable("the state store did not answer")

    def loss_usd() -> float:
        return REGISTRY.get_sample_value("boltgate_gateway_loss_usd_total", {"backend": "runflow"}) or 0.0

    monkeypatch.setattr(JobBook, "keep_charge", keep_fails)
    before = loss_usd()
    async with serving([route_to(ScriptedBackend("runflow"))], api_keys=KEYS, admin_token="admin-secret") as client:
        job = (await client.post("/v1/images/jobs", json=BODY, headers=ALICE)).json()
        ended = await finished(client, job["id"])
        await uncharged(client)
        logged = await charge_log(client)

    [pending] = tried
    assert ended["status"] == "failed" and "data" not in ended
    assert logged == []
    assert loss_usd() - before == pytest.approx(float(pending.charge.upstream_usd)) and loss_usd() > before
