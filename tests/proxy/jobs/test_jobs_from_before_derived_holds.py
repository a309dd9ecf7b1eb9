"""Jobs left by a version before derived hold ids (``proxy.jobs.holds``): once a job's first hold
was closed without a charge, that version's run again drew a hold id of its own, and kept its
charge under the first hold's key. A job it left unfinished with that charge landed must be
neither charged again when it runs again after the upgrade, nor left charged when it ends
without its images.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from core.errors import VendorUnavailable
from core.state.ledger_store import Settled, Tally, Voided
from proxy.billing import PendingCharge
from proxy.jobs.book import JobBook
from proxy.kept_charge import kept_charge_json
from tests.proxy.api.served_app import serving
from tests.proxy.jobs.test_jobs_api import KEYS, finished, spent
from tests.proxy.jobs.test_jobs_restart import (
    charge_log,
    ledger_of,
    restartable,
    state_of,
    stopped_after_its_charge,
    uncharged,
)
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to

DRAWN = "9f2c0d1e7a6b5c4d3e2f1a0b"
"""A hold id as those versions drew one (``secrets.token_hex(12)``)."""


async def left_on_a_drawn_hold(settings: dict[str, Any], job_id: str) -> None:
    """Rewrite a lost run's charge as that version left it (no app running): the first hold's
    charge taken back (closed without a charge), the same charge landed on a drawn hold, and
    kept, for that hold, under the first hold's key."""
    async with state_of(settings) as store, ledger_of(settings) as ledger:
        book = JobBook(store, retention_s=3600)
        record = await book.get(job_id)
        assert record is not None
        kept = await book.kept_charge(job_id, record.held.reservation(record.key_id))
        assert kept is not None
        settlement = kept.settlement
        negated = [Tally(t.table, t.field, -t.amount) for t in settlement.tallies]
        assert await ledger.void(record.key_id, record.held.reservation_id, settlement.micro_usd,
                                 tallies=negated) is Voided.REFUNDED
        drawn = replace(settlement.reservation, reservation_id=DRAWN)
        assert await ledger.hold(record.key_id, DRAWN, settlement.micro_usd, limit=drawn.limit, lease_s=60)
        assert await ledger.settle(record.key_id, DRAWN, settlement.micro_usd, limit=drawn.limit,
                                   tallies=settlement.tallies) is Settled.CHARGED
        on_drawn = PendingCharge(kept.charge, replace(settlement, reservation=drawn))
        await store.set(f"job:{job_id}:charge", kept_charge_json(on_drawn), ttl=3600)


async def test_a_job_charged_on_a_drawn_hold_runs_again_without_a_second_charge(
    state: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = restartable(state)
    job, charged = await stopped_after_its_charge(settings, monkeypatch)
    await left_on_a_drawn_hold(settings, str(job["id"]))

    again = ScriptedBackend("runflow")
    async with serving([route_to(again)], api_keys=KEYS, **settings) as client:
        ended = await finished(client, str(job["id"]))
        assert await spent(client) == (charged, 0)

    assert charged > 0
    assert ended["status"] == "succeeded", ended
    assert Decimal(ended["billing"]["cost_usd"]) == charged
    assert len(again.calls) == 1


async def test_a_job_charged_on_a_drawn_hold_that_ends_failed_has_that_charge_taken_back(
    state: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = restartable(state)
    job, charged = await stopped_after_its_charge(settings, monkeypatch)
    await left_on_a_drawn_hold(settings, str(job["id"]))

    down = ScriptedBackend.playing("runflow", *[VendorUnavailable("down", status=503)] * 3)
    async with serving([route_to(down)], api_keys=KEYS, **settings) as client:
        ended = await finished(client, str(job["id"]))
        await uncharged(client)
        refunds = await charge_log(client)

    assert charged > 0
    assert ended["status"] == "failed", ended
    assert refunds == [(charged, 1), (-charged, -1)]  # the first hold's void by hand wrote no line
