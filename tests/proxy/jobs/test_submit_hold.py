"""The hold a job submit places, and how long it keeps the key's credits.

The hold is placed before the job is queued. Were it placed for ``queued_hold_s`` at once, a
submit cut off between the two (its process killed, its store cut off, so its clean-up could not
run either) would leave no job and charge nothing, yet keep the key's credits held for an hour.
So it is placed for a request's lease (the deadline plus ``reservation_grace_s``), and renewed
for ``queued_hold_s`` only once the job is queued. A renew that fails, or that comes after the
job's run started (or ended), leaves the job safe: its run holds again when it finds the hold
expired, and a closed hold is never held again.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from redis.asyncio import Redis

from core.errors import StateUnavailable
from core.state.ledger_store import HoldState
from pricing.ledger import Ledger, Reservation
from proxy.jobs.queue import InProcessJobQueue
from proxy.jobs.redis_queue import RedisStreamJobQueue
from proxy.jobs.runner import JobRunner
from proxy.metrics import REGISTRY
from tests.proxy.api.served_app import Client, serving
from tests.proxy.jobs.test_jobs_api import ALICE, BODY, KEYS, finished, spent
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to
from tests.state_clock import StateClock

DEADLINE_S = 1.0
GRACE_S = 0.5
REQUEST_LEASE_S = DEADLINE_S + GRACE_S
QUEUED_HOLD_S = 3600.0
GUARD_S = 20.0
"""Far longer than a request's lease, far shorter than ``QUEUED_HOLD_S``."""


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> StateClock:
    return StateClock(monkeypatch)


def settings(state: dict[str, object]) -> dict[str, Any]:
    return {**state, "api_keys": KEYS, "deadline_s": DEADLINE_S, "reservation_grace_s": GRACE_S,
            "jobs": {"queued_hold_s": QUEUED_HOLD_S}}


async def store_down(*args: Any, **kwargs: Any) -> Any:
    raise StateUnavailable("the state store did not answer")


def cut_at_the_queueing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The store is cut off as the job is queued, and stays so for the submit's clean-up (the
    same as a process killed right after placing the hold)."""
    monkeypatch.setattr(InProcessJobQueue, "put", store_down)
    monkeypatch.setattr(RedisStreamJobQueue, "put", store_down)
    monkeypatch.setattr(Ledger, "release", store_down)


async def held_becomes_zero(client: Client, state: dict[str, object], clock: StateClock, after_s: float) -> None:
    """``after_s`` pass (the embedded store's clock is moved; Redis keeps its own, so its lease
    is waited out), and what the key holds must be back by then."""
    clock.advance(after_s)
    async with asyncio.timeout(GUARD_S if state["state_backend"] == "redis" else 1.0):
        while (await spent(client))[1] != 0:
            await asyncio.sleep(0.05)


async def test_a_submit_cut_before_its_job_was_queued_holds_its_credits_for_a_requests_lease_only(
    state: dict[str, object], clock: StateClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with serving([route_to(ScriptedBackend("runflow"))], **settings(state)) as client:
        headers = {**ALICE, "Idempotency-Key": "kite-1"}
        with monkeypatch.context() as cut:
            cut_at_the_queueing(cut)
            answer = await client.post("/v1/images/jobs", json=BODY, headers=headers)
        assert answer.status_code == 503, answer.text
        assert (await spent(client))[1] > 0  # held, and the clean-up could not give it back

        retried = await client.post("/v1/images/jobs", json=BODY, headers=headers)
        charged = Decimal(0)
        if retried.status_code == 202:  # the claim was given up (no job under it): the retry queued one
            done = await finished(client, retried.json()["id"])
            assert done["status"] == "succeeded"
            charged = Decimal(done["billing"]["cost_usd"])
        else:
            assert retried.status_code in (409, 503), retried.text

        await held_becomes_zero(client, state, clock, REQUEST_LEASE_S + 0.1)
        assert (await spent(client))[0] == charged


async def leases_left_s(redis_url: str) -> list[float]:
    """What each hold's lease has left in Redis (by its own clock)."""
    client = Redis.from_url(redis_url)
    try:
        seconds, micros = await client.time()
        now_ms = seconds * 1000 + micros // 1000
        left: list[float] = []
        async for name in client.scan_iter(match="*:leases"):
            left += [(score - now_ms) / 1000 for _, score in await client.zrange(name, 0, -1, withscores=True)]
        return left
    finally:
        await client.aclose()


async def test_a_queued_job_keeps_its_credits_held_for_queued_hold_s(
    state: dict[str, object], clock: StateClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(JobRunner, "start", lambda self: asyncio.sleep(0))  # nothing runs it: it waits
    before = renewals_now()
    async with serving([route_to(ScriptedBackend("runflow"))], **settings(state)) as client:
        submitted = await client.post("/v1/images/jobs", json=BODY, headers=ALICE)
        assert submitted.status_code == 202, submitted.text
        held = (await spent(client))[1]
        assert held > 0
        assert renewals_now() == counted_once(before, "renewed")

        if state["state_backend"] == "redis":
            [left] = await leases_left_s(str(state["redis_url"]))
            assert QUEUED_HOLD_S - GUARD_S < left <= QUEUED_HOLD_S
            return
        clock.advance(REQUEST_LEASE_S + 60)
        assert (await spent(client))[1] == held
        await held_becomes_zero(client, state, clock, QUEUED_HOLD_S)


def renewals(outcome: str) -> float:
    """Submits' renews of their job's hold so far with ``outcome`` (renewed, refused, failed)."""
    return REGISTRY.get_sample_value("boltgate_jobs_hold_renewals_total", {"outcome": outcome}) or 0.0


def renewals_now() -> dict[str, float]:
    return {outcome: renewals(outcome) for outcome in ("renewed", "refused", "failed")}


def counted_once(before: dict[str, float], outcome: str) -> dict[str, float]:
    """``before`` with one more renew of ``outcome``: what ``renewals_now`` must be after one submit."""
    return {**before, outcome: before[outcome] + 1}


async def submitted_runs_and_is_charged_once(state: dict[str, object]) -> None:
    """A job submitted is answered (202), succeeds, is charged once, and leaves nothing held."""
    async with serving([route_to(ScriptedBackend("runflow"))], **settings(state)) as client:
        submitted = await client.post("/v1/images/jobs", json=BODY, headers=ALICE)
        assert submitted.status_code == 202, submitted.text
        done = await finished(client, submitted.json()["id"])
        assert done["status"] == "succeeded"
        assert await spent(client) == (Decimal(done["billing"]["cost_usd"]), 0)


async def test_a_renew_that_fails_after_the_job_is_queued_leaves_it_queued_and_run_once(
    state: dict[str, object], clock: StateClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job is queued, so the submit answers it; its run, starting once the short lease ran
    out (on the embedded store: Redis keeps its own clock), holds again."""

    async def lease_out_then_down(*args: Any, **kwargs: Any) -> bool:
        clock.advance(REQUEST_LEASE_S + 1)
        raise StateUnavailable("the state store did not answer")

    monkeypatch.setattr(Ledger, "renew", lease_out_then_down)
    before = renewals_now()
    await submitted_runs_and_is_charged_once(state)
    assert renewals_now() == counted_once(before, "failed")


async def test_a_renew_sent_after_the_jobs_run_settled_holds_nothing_again(
    state: dict[str, object], clock: StateClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner took the job before the submit renewed its hold, and settled it: the renew
    finds the hold closed, which it never opens again, and the submit still answers the job."""
    renew = Ledger.renew

    async def after_the_settle(self: Ledger, reservation: Reservation, *, lease_s: float) -> bool:
        async with asyncio.timeout(GUARD_S):
            while await self.hold_state(reservation) is not HoldState.SETTLED:
                await asyncio.sleep(0.01)
        renewed = await renew(self, reservation, lease_s=lease_s)
        assert not renewed
        return renewed

    monkeypatch.setattr(Ledger, "renew", after_the_settle)
    before = renewals_now()
    await submitted_runs_and_is_charged_once(state)
    assert renewals_now() == counted_once(before, "refused")
