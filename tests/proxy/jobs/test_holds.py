"""A job's current hold is found from the ledger (and the charge kept under its first hold's key),
and every run of the job finds the same."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from core.state.ledger_store import HoldState, Settled
from core.state.memory import MemoryStateStore
from core.state.memory_ledger import MemoryLedgerStore
from pricing.ledger import Ledger
from proxy.billing import PendingCharge
from proxy.jobs.book import JobBook
from proxy.jobs.holds import current_hold, job_hold
from proxy.jobs.record import HeldCredits, JobRecord
from proxy.kept_charge import kept_charge_json
from tests.proxy.test_kept_charge import PER_IMAGE_WITHOUT_BUDGET

RECORD = JobRecord("job_1", "key-1", {"prompt": "a kite"}, "http://gateway.test",
                   HeldCredits("hold-a", 5_000, 1_000_000, "100"))


def ledger() -> tuple[Ledger, MemoryLedgerStore]:
    book = MemoryLedgerStore()
    return Ledger(book, MemoryStateStore()), book


KEPT = JobBook(MemoryStateStore(), retention_s=60)
"""A job book with no charge kept: the holds of a job from this version on."""


async def test_the_hold_placed_at_submit_is_current_until_it_is_closed_without_a_charge() -> None:
    money, book = ledger()
    assert (await current_hold(money, KEPT, RECORD)).reservation == RECORD.held.reservation("key-1")

    await book.settle("key-1", "hold-a", 4_000, limit=None)
    settled = await current_hold(money, KEPT, RECORD)

    assert (settled.number, settled.state) == (0, HoldState.SETTLED)


async def test_a_hold_closed_without_a_charge_makes_the_next_one_current_with_an_id_of_its_own() -> None:
    money, book = ledger()
    await book.release("key-1", "hold-a")
    first_next = await current_hold(money, KEPT, RECORD)
    await book.void("key-1", "hold-a.1", 0)  # a charge taken back closes it for good too
    second_next = await current_hold(money, KEPT, RECORD)

    assert (first_next.number, first_next.reservation.reservation_id, first_next.state) == (1, "hold-a.1",
                                                                                           HoldState.OPEN)
    assert (second_next.number, second_next.reservation.reservation_id) == (2, "hold-a.2")
    assert second_next.reservation.limit == RECORD.held.limit and second_next.reservation.micro_usd == 0


async def test_two_runs_that_find_the_first_hold_closed_share_the_next_so_one_charge_lands() -> None:
    money, book = ledger()
    await book.release("key-1", "hold-a")
    one, other = await current_hold(money, KEPT, RECORD), await current_hold(money, KEPT, RECORD)
    ids = {one.reservation.reservation_id, other.reservation.reservation_id}
    for hold in (one, other):
        await money.hold(hold.reservation, Decimal("0.004"), lease_s=60)

    settled = [await book.settle("key-1", hold.reservation.reservation_id, 4_000, limit=1_000_000)
               for hold in (one, other)]

    assert ids == {job_hold(RECORD, 1).reservation_id}
    assert settled == [Settled.CHARGED, Settled.ALREADY_SETTLED]
    assert (await book.balance("key-1")).spent == 4_000


async def test_a_hold_an_earlier_version_drew_after_the_first_is_current_until_closed_without_a_charge() -> None:
    """Named only by the charge its run kept under the first hold's key (what versions before
    derived ids wrote): settled, it is the job's hold; given back, hold 1 comes after it."""
    money, book = ledger()
    store = MemoryStateStore()
    drawn = replace(RECORD.held.reservation("key-1"), reservation_id="drawn-9f2c")
    kept = PendingCharge(PER_IMAGE_WITHOUT_BUDGET.charge, replace(PER_IMAGE_WITHOUT_BUDGET.settlement,
                                                                  reservation=drawn))
    await store.set("job:job_1:charge", kept_charge_json(kept))
    jobs = JobBook(store, retention_s=60)
    await book.release("key-1", "hold-a")
    await book.hold("key-1", "drawn-9f2c", 4_050, limit=None, lease_s=60)
    held = await current_hold(money, jobs, RECORD)
    await book.settle("key-1", "drawn-9f2c", 4_050, limit=None)
    settled = await current_hold(money, jobs, RECORD)
    charge = await jobs.kept_charge("job_1", settled.reservation, hold=settled.number)
    await book.void("key-1", "drawn-9f2c", 4_050)
    after = await current_hold(money, jobs, RECORD)

    assert (held.number, held.reservation.reservation_id, held.state) == (0, "drawn-9f2c", HoldState.OPEN)
    assert (settled.number, settled.reservation.reservation_id, settled.state) == (0, "drawn-9f2c",
                                                                                  HoldState.SETTLED)
    assert charge == kept
    assert (after.number, after.reservation.reservation_id, after.state) == (1, "hold-a.1", HoldState.OPEN)


async def test_the_first_holds_own_kept_charge_names_no_drawn_hold() -> None:
    money, book = ledger()
    jobs = JobBook(MemoryStateStore(), retention_s=60)
    first = RECORD.held.reservation("key-1")
    await jobs.keep_charge("job_1", PendingCharge(PER_IMAGE_WITHOUT_BUDGET.charge,
                                                  replace(PER_IMAGE_WITHOUT_BUDGET.settlement, reservation=first)))
    await book.void("key-1", "hold-a", 0)

    assert await jobs.drawn_hold(RECORD) is None
    assert (await current_hold(money, jobs, RECORD)).reservation.reservation_id == "hold-a.1"
