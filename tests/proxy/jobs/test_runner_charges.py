"""A job is charged only for the images it ends with: a cancel that wins over a run already
charged takes that charge back (the charge the run kept, voided: a refund line, once)."""

from __future__ import annotations

import asyncio

import pytest

from proxy.gateway import Gateway
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
