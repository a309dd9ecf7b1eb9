"""An Idempotency-Key's claim: one write keeps the request (and a door's run), a second claim
reads it back with its age, and a retry is told which 409 applies."""

from __future__ import annotations

import pytest

from core.errors import IdempotencyConflict
from core.state.memory import MemoryStateStore
from core.state.memory_ledger import MemoryLedgerStore
from pricing.ledger import Ledger
from proxy.claims import CLAIM_GRACE_S, Claim, HeldClaim, claim, refuse_held
from tests.state_clock import StateClock


def ledger() -> Ledger:
    return Ledger(MemoryLedgerStore(), MemoryStateStore())


async def test_the_first_claim_wins_and_a_second_reads_what_it_keeps_and_its_age(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = StateClock(monkeypatch)
    records = ledger()

    first = await claim(records, "key", "order-1", Claim("fp", run="job_1"))
    clock.advance(90)
    second = await claim(records, "key", "order-1", Claim("fp", run="job_2"))

    assert first is None
    assert second is not None and second.claim == Claim("fp", run="job_1")
    assert 89 < second.age_s < 91


async def test_a_released_claim_is_claimed_again() -> None:
    records = ledger()
    await claim(records, "key", "order-2", Claim("fp"))
    await records.release_idempotency("key", "order-2")

    assert await claim(records, "key", "order-2", Claim("fp")) is None


def test_a_claim_written_before_claims_kept_their_request_reads_as_none() -> None:
    assert Claim.from_json(b"1") is None
    assert Claim.from_json(Claim("fp").to_json()) == Claim("fp")


@pytest.mark.parametrize(("held", "asked", "code", "says"), [
    (HeldClaim(Claim("fp"), 1.0), "other", "idempotency_key_reused", "different request"),
    (HeldClaim(Claim("fp"), CLAIM_GRACE_S - 1), "fp", "idempotency_conflict", "still in progress"),
    (HeldClaim(None, 10_000.0), "fp", "idempotency_conflict", "still in progress"),
    (HeldClaim(Claim("fp"), CLAIM_GRACE_S + 1), "fp", "idempotent_answer_unavailable", "new Idempotency-Key"),
])
def test_a_retry_is_told_why_the_key_has_no_answer(held: HeldClaim, asked: str, code: str, says: str) -> None:
    with pytest.raises(IdempotencyConflict) as refused:
        refuse_held(held, asked, CLAIM_GRACE_S)

    assert refused.value.code == code and says in refused.value.message
    assert refused.value.status_code == 409 and refused.value.headers == {"x-should-retry": "false"}
