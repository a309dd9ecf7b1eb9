"""A job's current hold is found from the ledger alone, and every run of the job finds the same."""

from __future__ import annotations

from decimal import Decimal

from core.state.ledger_store import HoldState, Settled
from core.state.memory import MemoryStateStore
from core.state.memory_ledger import MemoryLedgerStore
from pricing.ledger import Ledger
from proxy.jobs.holds import current_hold, job_hold
from proxy.jobs.record import HeldCredits, JobRecord

RECORD = JobRecord("job_1", "key-1", {"prompt": "a kite"}, "http://gateway.test",
                   HeldCredits("hold-a", 5_000, 1_000_000, "100"))


def ledger() -> tuple[Ledger, MemoryLedgerStore]:
    book = MemoryLedgerStore()
    return Ledger(book, MemoryStateStore()), book


async def test_the_hold_placed_at_submit_is_current_until_it_is_closed_without_a_charge() -> None:
    money, book = ledger()
    assert (await current_hold(money, RECORD)).reservation == RECORD.held.reservation("key-1")

    await book.settle("key-1", "hold-a", 4_000, limit=None)
    settled = await current_hold(money, RECORD)

    assert (settled.number, settled.state) == (0, HoldState.SETTLED)


async def test_a_hold_closed_without_a_charge_makes_the_next_one_current_with_an_id_of_its_own() -> None:
    money, book = ledger()
    await book.release("key-1", "hold-a")
    first_next = await current_hold(money, RECORD)
    await book.void("key-1", "hold-a.1", 0)  # a charge taken back closes it for good too
    second_next = await current_hold(money, RECORD)

    assert (first_next.number, first_next.reservation.reservation_id, first_next.state) == (1, "hold-a.1",
                                                                                           HoldState.OPEN)
    assert (second_next.number, second_next.reservation.reservation_id) == (2, "hold-a.2")
    assert second_next.reservation.limit == RECORD.held.limit and second_next.reservation.micro_usd == 0


async def test_two_runs_that_find_the_first_hold_closed_share_the_next_so_one_charge_lands() -> None:
    money, book = ledger()
    await book.release("key-1", "hold-a")
    one, other = await current_hold(money, RECORD), await current_hold(money, RECORD)
    ids = {one.reservation.reservation_id, other.reservation.reservation_id}
    for hold in (one, other):
        await money.hold(hold.reservation, Decimal("0.004"), lease_s=60)

    settled = [await book.settle("key-1", hold.reservation.reservation_id, 4_000, limit=1_000_000)
               for hold in (one, other)]

    assert ids == {job_hold(RECORD, 1).reservation_id}
    assert settled == [Settled.CHARGED, Settled.ALREADY_CLOSED]
    assert (await book.balance("key-1")).spent == 4_000
