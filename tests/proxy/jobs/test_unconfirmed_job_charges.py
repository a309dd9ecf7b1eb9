"""A job run whose settle the state store never confirmed is seen by the operator as a request's is.

The money is the job's end's to settle (``proxy.gateway``: the run's gateway neither voids nor
releases, since another run of the job may be settling the same kept charge): the job fails, and
its end takes the charge back if the settle landed. What must not be lost is that the store lost
a charge's answer: it is counted in ``boltgate_unconfirmed_charges_total`` (``outcome`` label
``left_to_job``), once, and logged with its key, request id and amount, as a request's unconfirmed
charge is (there: counted once its void is made, with ``refunded`` or ``released``).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from core.errors import StateUnavailable
from proxy.billing import Billing, PendingCharge
from proxy.metrics import REGISTRY
from tests.proxy.api.served_app import serving
from tests.proxy.jobs.test_jobs_api import ALICE, BODY, KEYS, finished, spent
from tests.proxy.jobs.test_jobs_restart import charge_log, restartable, uncharged
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to


def unconfirmed(outcome: str) -> float:
    return REGISTRY.get_sample_value("boltgate_unconfirmed_charges_total", {"outcome": outcome}) or 0.0


@pytest.fixture(params=[True, False], ids=["its first try landed", "no try landed"])
def landed(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


async def test_a_job_run_s_unconfirmed_charge_is_counted_and_logged_and_its_end_takes_it_back(
    state: dict[str, object], landed: bool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Every try of the run's settle goes unanswered until its deadline: the first one ran (its
    answer lost), or none did (the store was down for the settle)."""
    settle = Billing.settle
    tries: list[str] = []

    async def unanswered(self: Billing, pending: PendingCharge) -> Any:
        tries.append(pending.settlement.reservation.reservation_id)
        if landed and len(tries) == 1:
            await settle(self, pending)
        raise StateUnavailable("The state store (test) did not answer in time")

    monkeypatch.setattr(Billing, "settle", unanswered)
    before = {outcome: unconfirmed(outcome) for outcome in ("left_to_job", "refunded", "released")}
    with caplog.at_level(logging.WARNING, logger="proxy.unconfirmed_charges"):
        async with serving([route_to(ScriptedBackend("runflow"))], api_keys=KEYS, deadline_s=1.0,
                           **restartable(state)) as client:
            job = (await client.post("/v1/images/jobs", json=BODY, headers=ALICE)).json()
            ended = await finished(client, job["id"])
            await uncharged(client)
            logged = await charge_log(client)
            assert await spent(client) == (0, 0)

    assert ended["status"] == "failed" and ended["error"]["code"] == "state_unavailable", ended
    assert len(set(tries)) == 1 and len(tries) > 1  # one charge, tried until its deadline
    assert unconfirmed("left_to_job") == before["left_to_job"] + 1
    # not voided as a request's: the job's end took it back
    assert (unconfirmed("refunded"), unconfirmed("released")) == (before["refunded"], before["released"])
    (warned,) = [r.getMessage() for r in caplog.records if "went unconfirmed" in r.getMessage()]
    assert tries[0] in warned and "bg-alice" not in warned
    if landed:
        (price, images), refund = logged
        assert price > 0 and images == 1 and refund == (-price, -1)
    else:
        assert logged == []
