"""A job's holds: which one its next charge can land on, found from the ledger (and, for a job
from before derived ids, the charge its run kept).

A job is charged on one hold at a time. The first is the one placed at submit (number 0, its id
in the record). A hold closed without its charge standing (released, or voided: a run failed and
gave it back, or its charge was taken back, and the process died before the job's end was
written) is closed for good, so the job's run again needs a new one: number ``n + 1``, whose id
is the first's with ``.<n + 1>`` after it. Deriving the id, rather than drawing a fresh one, is
what makes it one hold per job whatever runs: two runs of the job alive at once (the queue
reclaimed a run it believed lost) that each find hold ``n`` closed both take hold ``n + 1``, so
at most one charge can land, as on the first hold. A drawn id would give each its own hold, and
both charges could land.

The job's current hold is the first of that sequence not closed without a charge: open (held,
expired, or never placed yet) or settled. The holds before it can never be charged again, and
those after it were never placed (a run takes hold ``n + 1`` only once hold ``n`` is closed
without a charge, and that never changes back within the ledger's ``CLOSED_TTL_S``).

A job left by a version before derived ids may have a hold whose id that version drew, after the
first was closed without a charge, for its run again; the ledger does not know it as the job's,
only the charge that run kept under the first hold's key does (``JobBook.drawn_hold``: those
versions kept one charge per job, under that key). It comes right after the first: while it is
not closed without a charge it is the job's current hold, numbered 0 since its charge is kept
under hold 0's key. A charge that landed on it is so reported by the job's run again, or taken
back when the job ends without its images, instead of going unseen while the job is charged again
on hold 1 (or ends failed with that charge standing).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.state.ledger_store import HoldState
from pricing.ledger import Ledger, Reservation
from proxy.jobs.book import JobBook
from proxy.jobs.record import JobRecord


@dataclass(frozen=True, slots=True)
class JobHold:
    number: int
    """0: the hold placed at submit (or one drawn after it by an earlier version); n: the one
    taken after hold n - 1 was closed without a charge. Names the hold's kept charge (``JobBook``)."""
    reservation: Reservation
    state: HoldState


def job_hold(record: JobRecord, number: int) -> Reservation:
    """The job's hold ``number``; one after the first holds nothing until a run places it."""
    first = record.held.reservation(record.key_id)
    if number == 0:
        return first
    return Reservation(first.api_key, f"{first.reservation_id}.{number}", first.limit, first.budget_credits)


async def current_hold(ledger: Ledger, book: JobBook, record: JobRecord) -> JobHold:
    """The job's hold that a charge can stand on now: one ledger read per hold closed before it,
    and, once the first is closed, one read of the charge kept under its key (which names the
    drawn hold of a job from before derived ids)."""
    first = job_hold(record, 0)
    state = await ledger.hold_state(first)
    if state is not HoldState.RELEASED:
        return JobHold(0, first, state)
    drawn = await book.drawn_hold(record)
    if drawn is not None and (state := await ledger.hold_state(drawn)) is not HoldState.RELEASED:
        return JobHold(0, drawn, state)
    number = 1
    while True:
        reservation = job_hold(record, number)
        state = await ledger.hold_state(reservation)
        if state is not HoldState.RELEASED:
            return JobHold(number, reservation, state)
        number += 1
