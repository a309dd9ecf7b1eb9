"""A run's charge as the job keeps it reads back exactly: a void of it takes back to the micro-USD
what its settle wrote, and the job reports the price it was charged."""

from __future__ import annotations

import logging
from dataclasses import replace
from decimal import Decimal

import orjson
import pytest

from core.errors import StateUnavailable
from core.state.ledger_store import Tally
from core.state.memory import MemoryStateStore
from pricing.charge_log import ChargeRecord
from pricing.ledger import Reservation, Settlement
from pricing.quote import DisplayAmount, Quote
from proxy.billing import Charge, PendingCharge
from proxy.jobs.book import JobBook
from proxy.kept_charge import kept_charge_from_json, kept_charge_json

TIME_BILLED = PendingCharge(
    Charge(Quote("eachlabs", 2, Decimal("0.0154"), Decimal("0.02002"), Decimal("2.002"), False,
                 seconds=Decimal("10.0"), display=DisplayAmount("EUR", Decimal("0.018418"))),
           overrun_usd=Decimal("0.00308")),
    Settlement(
        Reservation("key-1", "hold-1", 5_000_000, Decimal("500"), 40_000),
        20_020, "eachlabs",
        (Tally("key:key-1:day_usd", "2026-12-01", 20_020), Tally("key:key-1:day_images", "2026-12-01", 2),
         Tally("losses:vendor_usd", "eachlabs", 3_080), Tally("losses:vendor_overruns", "eachlabs", 1)),
        ChargeRecord("key-1", "hold-1", "eachlabs", "eu", "v-77", 2, Decimal("12.0"), Decimal("0.01848"),
                     Decimal("0.0185"), Decimal("0.02002")),
    ),
)
PER_IMAGE_WITHOUT_BUDGET = PendingCharge(
    Charge(Quote("runflow", 1, Decimal("0.003"), Decimal("0.00405"), Decimal("0.405"), False)),
    Settlement(Reservation("anonymous", "hold-2", None, None, 4_050), 4_050, "runflow",
               (Tally("key:anonymous:vendor_usd", "runflow", 4_050),), None),
)


@pytest.mark.parametrize("pending", [TIME_BILLED, PER_IMAGE_WITHOUT_BUDGET], ids=["time-billed", "per-image"])
def test_a_kept_charge_reads_back_exactly(pending: PendingCharge) -> None:
    assert kept_charge_from_json(kept_charge_json(pending)) == pending


def on_hold(pending: PendingCharge, reservation: Reservation) -> PendingCharge:
    """``pending`` as a run settling ``reservation`` would keep it."""
    return PendingCharge(pending.charge, replace(pending.settlement, reservation=reservation))


FIRST_HOLD = TIME_BILLED.settlement.reservation
NEXT_HOLD = Reservation("key-1", "hold-1.1", 5_000_000, Decimal("500"))


async def test_the_first_charge_kept_for_a_hold_is_the_one_every_later_run_of_the_job_settles() -> None:
    """Two runs of one job alive at once: the later one is answered the earlier one's charge."""
    book = JobBook(MemoryStateStore(), retention_s=60)
    later_run = on_hold(PER_IMAGE_WITHOUT_BUDGET, FIRST_HOLD)
    assert await book.kept_charge("job_1", FIRST_HOLD) is None
    assert await book.keep_charge("job_1", TIME_BILLED) is TIME_BILLED
    assert await book.keep_charge("job_1", later_run) == TIME_BILLED
    assert await book.kept_charge("job_1", FIRST_HOLD) == TIME_BILLED


async def test_each_hold_of_a_job_keeps_a_charge_of_its_own() -> None:
    book = JobBook(MemoryStateStore(), retention_s=60)
    on_next = on_hold(PER_IMAGE_WITHOUT_BUDGET, NEXT_HOLD)
    await book.keep_charge("job_1", TIME_BILLED)
    assert await book.keep_charge("job_1", on_next, hold=1) is on_next
    assert await book.kept_charge("job_1", FIRST_HOLD) == TIME_BILLED
    assert await book.kept_charge("job_1", NEXT_HOLD, hold=1) == on_next


async def test_a_charge_kept_for_another_hold_is_none_of_this_ones_and_is_never_settled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What a version that drew a new hold id kept under the first hold's key."""
    store = MemoryStateStore()
    await store.set("job:job_1:charge", kept_charge_json(PER_IMAGE_WITHOUT_BUDGET))
    book = JobBook(store, retention_s=60)
    with caplog.at_level(logging.ERROR, logger="proxy.jobs.book"):
        assert await book.kept_charge("job_1", FIRST_HOLD) is None
    with pytest.raises(StateUnavailable):
        await book.keep_charge("job_1", TIME_BILLED)
    assert any("job_1" in record.getMessage() for record in caplog.records)


async def test_a_kept_charge_that_cannot_be_read_is_none_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStateStore()
    await store.set("job:job_1:charge", b'{"quote": {}}')
    with caplog.at_level(logging.ERROR, logger="proxy.jobs.book"):
        assert await JobBook(store, retention_s=60).kept_charge("job_1", FIRST_HOLD) is None
    assert any("job_1" in record.getMessage() for record in caplog.records)


async def test_a_run_whose_hold_has_a_charge_kept_that_cannot_be_read_settles_nothing() -> None:
    """Its own could land where the unreadable one was already sent: neither is settled by it."""
    store = MemoryStateStore()
    await store.set("job:job_1:charge", b'{"quote": {}}')
    with pytest.raises(StateUnavailable):
        await JobBook(store, retention_s=60).keep_charge("job_1", TIME_BILLED)


@pytest.mark.parametrize("corrupt", [
    b'{"quote": {}}',  # a field missing
    b"[1, 2]",  # not an object
    b"not json",
], ids=["field-missing", "not-an-object", "not-json"])
def test_what_is_not_a_kept_charge_is_one_value_error(corrupt: bytes) -> None:
    with pytest.raises(ValueError):
        kept_charge_from_json(corrupt)


def test_an_amount_that_is_not_a_number_is_a_value_error_too() -> None:
    """Decimal's own error is an ArithmeticError; a reader that catches ValueError must see it."""
    kept = orjson.loads(kept_charge_json(PER_IMAGE_WITHOUT_BUDGET))
    kept["quote"]["client_usd"] = "four cents"
    with pytest.raises(ValueError, match="not a kept charge"):
        kept_charge_from_json(orjson.dumps(kept))
