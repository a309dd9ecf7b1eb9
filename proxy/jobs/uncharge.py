"""Make sure a job that ended without its images is not charged: its current hold closed for good.

A job is charged on one hold at a time, its current one (``proxy.jobs.holds``): the one placed at
submit, or the next one a run held after the one before was closed without a charge. Whatever
ends the job without its images (its owner's cancel, a failed run, a run lost too often, a cancel
that won over a charged run) closes *that* hold, not the first: the charge a run kept for it is
taken back (``Billing.take_back``: refunded with a line in the charge log if its settle landed,
the hold closed if not, the vendor's cost booked once as the gateway's loss), and a hold with no
charge kept is released. A settle that comes after finds the hold closed without a charge and
charges nothing (``ReservationReleased``); a run that looks for the job's hold after that finds
the job's end, written before, and holds nothing more (``proxy.jobs.runner``).

Each step is idempotent, so the cancel, the run's end and the next delivery of the job may each
do it, in any order and in any process: a charge is taken back once, and its vendor cost booked
as a loss once, also when the run itself booked it (its settle found the hold closed, or its keep
failed: ``proxy.gateway``).
"""

from __future__ import annotations

import logging

from core.state.ledger_store import HoldState, Voided
from proxy.billing import Billing
from proxy.jobs.book import JobBook
from proxy.jobs.holds import current_hold
from proxy.jobs.record import JobRecord
from proxy.metrics import JOBS_CHARGED_WITHOUT_IMAGES

log = logging.getLogger(__name__)


async def uncharge(billing: Billing, book: JobBook, record: JobRecord) -> None:
    """Close the job's current hold without a charge: the charge a run kept for it voided, or the
    hold released when none was kept. A settled hold with no readable kept charge (a record from
    before runs kept theirs) cannot be undone here: logged and counted for an operator, once per
    job (a durable marker in the ledger, ``Ledger.first_seen``) however often the job's end is
    settled up (its cancel, its run's end, each delivery of it after a restart)."""
    hold = await current_hold(billing.ledger, book, record)
    reservation = hold.reservation
    kept = await book.kept_charge(record.id, reservation, hold=hold.number)
    if kept is not None:
        if await billing.take_back(kept) is Voided.REFUNDED:
            settlement = kept.settlement
            log.warning("job %s ended without its images: its charge of %d micro-USD (request %s) was taken "
                        "back", record.id, settlement.micro_usd, settlement.reservation.reservation_id)
        return
    if hold.state is HoldState.SETTLED and await billing.ledger.first_seen(f"charged_without_images:{record.id}"):
        JOBS_CHARGED_WITHOUT_IMAGES.inc()
        log.error("job %s ended without its images although a run was charged for it, and no charge was kept "
                  "with it to take back: key %s, request %s (the charge log's request_id), at most %d "
                  "micro-USD; refund it by hand", record.id, record.key_id, reservation.reservation_id,
                  reservation.micro_usd)
    await billing.ledger.release(reservation)
