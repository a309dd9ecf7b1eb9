"""Charges sent to the state store but never confirmed, voided once the store answers again; and
losses the store did not book, booked once it answers again.

A settle whose answer is lost (Redis timed out or dropped the connection, the loop was too late
to read an answer that did arrive, the request was cancelled mid-try) may or may not have
landed. The client is answered with an error and no image, so the charge must not stand: each
such request is voided (``Billing.void``): the charge taken back if it landed, the hold released
for good if not, and what the vendor cost booked as the gateway's loss. Each void runs in a task
of its own: the first try at once, then, while the store does not answer, tries with a growing
pause until one succeeds or the gateway stops. Every void is idempotent, so a try whose own
answer is lost is simply tried again; so is a try that fails for any other reason (logged).

A process killed while it still owes a void leaves the debt written down on local disk
(``proxy.owed_voids``, when a journal is given): the next start on the same directory makes it
(``resume``). Each void the store does not answer at once is also logged, with the key, the
request id (the charge log's ``request_id``) and the amount, and again as an error when the
gateway stops before it could be made, each record carrying the journal's line for it (its
``owed_void`` field), so a void whose disk was lost too (the pod itself gone) is made from the logs
by ``boltgate voids make`` (``proxy.void_command``).

A loss (``Billing._book_loss``) the store did not book is owed the same way (``owe_loss``): written
down in the same journal, tried again in a task of its own until the store books it, made by the
next start when this process is killed (``proxy.owed_losses``: booked once, however often tried).
``boltgate_gateway_losses_pending`` counts those not booked yet.

An async job's run whose settle went unconfirmed is not voided here (``left_to_job``): another run
of the job may be settling the same kept charge on the same hold, and a void would take back the
charge of a run that delivered its images. The job's end decides (``proxy.jobs.uncharge`` takes
the charge back when the job ends without its images), and the job's delivery, unacknowledged
until then, is what outlives a killed process, not the journal. It is still counted in
``boltgate_unconfirmed_charges_total`` (``outcome="left_to_job"``, when it goes unconfirmed) and
logged with its key, request id and amount, so an operator sees every charge the store did not
confirm, a job's as a request's.
"""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import Gauge

from core.errors import StateUnavailable
from core.logs import FIELDS
from proxy.billing import Billing, PendingCharge
from proxy.metrics import GATEWAY_LOSSES_PENDING, UNCONFIRMED_CHARGES, UNCONFIRMED_CHARGES_PENDING, labelled
from proxy.owed_losses import OWED_LOSS_FIELD, OwedLoss, owed_loss_line
from proxy.owed_voids import OWED_VOID_FIELD, OwedVoidsJournal, owed_id, owed_line
from proxy.shutdown import UNWIND_S, cancel_and_wait

log = logging.getLogger(__name__)

FIRST_PAUSE_S = 0.2
"""Pause after the first try failed; it doubles after every failed try."""
LONGEST_PAUSE_S = 5.0
"""The longest pause between two tries: a store back after an outage is tried within this."""
LAST_TRY_S = 2.0
"""At stop, how long the voids still owed get for one last try each before they are logged."""
LEFT_TO_JOB = "left_to_job"
"""``boltgate_unconfirmed_charges_total``'s outcome for a job run's unconfirmed charge."""


class UnconfirmedCharges:
    """Voids the charges of requests answered with an error after their settle went unconfirmed,
    and books the losses the store did not book: what is owed to the state store."""

    def __init__(self, billing: Billing, *, first_pause_s: float = FIRST_PAUSE_S,
                 longest_pause_s: float = LONGEST_PAUSE_S, last_try_s: float = LAST_TRY_S,
                 journal: OwedVoidsJournal | None = None) -> None:
        self._billing = billing
        self._journal = journal
        self._first_pause_s = first_pause_s
        self._longest_pause_s = longest_pause_s
        self._last_try_s = last_try_s
        self._owed: dict[asyncio.Task[None], PendingCharge | OwedLoss] = {}
        self._closing = False
        self._owed_at_close = False
        """A loss owed once the stop began (by a void's last try): left written down for the next start."""

    @property
    def longest_stop_s(self) -> float:
        """The longest ``aclose`` takes: the background tries' unwind, then the last tries."""
        return UNWIND_S + self._last_try_s + 1.0

    @property
    def owed(self) -> int:
        """Voids not made and losses not booked yet (the store has not answered since they were owed)."""
        return len(self._owed)

    def void(self, pending: PendingCharge) -> None:
        """Void ``pending`` in a task of its own: at once, then again while the store does not
        answer. Not awaited by the request that owes it, so neither a second cancel of that
        request (a client gone, a server stopping) can interrupt the void, nor can a store that
        does not answer delay the request's 503."""
        if self._journal is not None:
            self._journal.owe(pending)  # before the first try: a kill during it leaves the debt written down
        self._keep_owing(pending, f"void {pending.settlement.reservation.reservation_id}")

    def owe_loss(self, loss: OwedLoss) -> None:
        """Book ``loss``, which the store did not book, once it answers (``Billing.owe_loss``):
        written down first, then tried in a task of its own as a void is. Owed once the stop
        began (a void's last try booking its loss), it is left written down for the next start."""
        if self._journal is not None:
            self._journal.owe_loss(loss)
        if self._closing:
            self._owed_at_close = True
            _log_loss_left(loss, written_down=self._journal is not None and self._journal.writing)
            return
        self._keep_owing(loss, f"loss {loss.event_id}")

    def _keep_owing(self, owed: PendingCharge | OwedLoss, name: str) -> None:
        task = asyncio.create_task(self._keep_trying(owed), name=name)
        self._owed[task] = owed
        _pending_gauge(owed).inc()
        task.add_done_callback(self._paid)

    def left_to_job(self, pending: PendingCharge) -> None:
        """An async job's run whose settle went unconfirmed: not voided (see above), only counted
        and logged; the job's end makes sure it is charged only if the job ends with its images."""
        labelled(UNCONFIRMED_CHARGES, LEFT_TO_JOB).inc()
        settlement = pending.settlement
        log.warning("a job run's charge went unconfirmed: key %s, request %s, %d micro-USD; the job's end takes "
                    "it back unless the job ends with its images", settlement.reservation.api_key,
                    settlement.reservation.reservation_id, settlement.micro_usd)

    def resume(self) -> int:
        """Take over the voids and losses that processes now gone owed in the journal's directory
        and make them as this process's own; how many there were."""
        if self._journal is None:
            return 0
        inherited = self._journal.inherit()
        for pending in inherited.owed:
            log.warning("making a void a stopped process owed: %s", _described(pending))
            self.void(pending)  # written down here before the gone process's file is removed
        for loss in inherited.losses:
            log.warning("booking a loss a stopped process owed: %s", _described(loss))
            self.owe_loss(loss)
        self._journal.forget(inherited)
        return len(inherited.owed) + len(inherited.losses)

    def _paid(self, task: asyncio.Task[None]) -> None:
        owed = self._owed.pop(task, None)
        if owed is None:
            return
        _pending_gauge(owed).dec()
        if self._journal is not None and not task.cancelled() and task.exception() is None:
            self._journal.paid(owed)

    async def _try(self, owed: PendingCharge | OwedLoss) -> bool:
        """Whether the void is made (the loss booked). Any error is a try that failed, to be made
        again: one that is no outage (a reply redis-py raises as it is, a bug) used to end the
        void's task, which dropped the void from what is owed, unlogged, and let the stop remove
        the journal that still owed it."""
        try:
            if isinstance(owed, OwedLoss):
                booked = await self._billing.book_loss(owed)
                log.info("booked the loss %s: %s", owed.event_id, "booked" if booked else "booked before")
                return True
            outcome = await self._billing.void(owed)
        except StateUnavailable:
            return False
        except Exception:
            log.exception("a %s failed, and not for the state store's outage: %s; trying again",
                          "loss's booking" if isinstance(owed, OwedLoss) else "void", owed_id(owed))
            return False
        log.info("voided the unconfirmed charge of request %s: %s",
                 owed.settlement.reservation.reservation_id, outcome.value)
        return True

    async def _keep_trying(self, owed: PendingCharge | OwedLoss) -> None:
        pause = self._first_pause_s
        while not await self._try(owed):
            if pause == self._first_pause_s:
                if isinstance(owed, OwedLoss):
                    log.warning("owing a loss: %s not booked; trying until the state store answers", _described(owed),
                                extra=_owed_loss_field(owed))
                else:
                    log.warning("owing a void: %s unconfirmed; trying until the state store answers",
                                _described(owed), extra=_owed_void_field(owed))
            await asyncio.sleep(pause)
            pause = min(2 * pause, self._longest_pause_s)

    async def aclose(self) -> None:
        """Stop the background tries, give every void and loss still owed one last try (bounded),
        and log each that is still not made as an error an operator must act on."""
        self._closing = True
        owed = dict(self._owed)
        if not owed:
            if self._journal is not None:
                self._journal.close(still_owed=False)
            return
        await cancel_and_wait(owed, within_s=UNWIND_S, what="background voids")
        last = {asyncio.create_task(self._try(pending)): pending for pending in owed.values()}
        await asyncio.wait(last, timeout=self._last_try_s)
        written_down = self._journal is not None and self._journal.writing
        still_owed = False
        for attempt, pending in last.items():
            if attempt.done() and not attempt.cancelled() and attempt.exception() is None and attempt.result():
                if self._journal is not None:
                    self._journal.paid(pending)
                continue
            attempt.cancel()
            still_owed = True
            if isinstance(pending, OwedLoss):
                _log_loss_left(pending, written_down=written_down)
                continue
            settlement = pending.settlement
            log.error("stopping with a void still owed: key %s, request %s may be charged %d micro-USD for a "
                      "request answered 503; %s`boltgate voids make` with this log line makes it",
                      settlement.reservation.api_key, settlement.reservation.reservation_id, settlement.micro_usd,
                      "the next start on this data directory makes it, or " if written_down else "",
                      extra=_owed_void_field(pending))
        self._owed.clear()
        if self._journal is not None:
            self._journal.close(still_owed=still_owed or self._owed_at_close)


def _log_loss_left(loss: OwedLoss, *, written_down: bool) -> None:
    """A loss still owed as the gateway stops: an error an operator must act on, carrying the
    journal's line (``owed_loss``) that ``boltgate voids make`` books from the logs."""
    log.error("stopping with a loss not booked: %s; %s`boltgate voids make` with this log line books it",
              _described(loss), "the next start on this data directory books it, or " if written_down else "",
              extra=_owed_loss_field(loss))


def _pending_gauge(owed: PendingCharge | OwedLoss) -> Gauge:
    return GATEWAY_LOSSES_PENDING if isinstance(owed, OwedLoss) else UNCONFIRMED_CHARGES_PENDING


def _described(owed: PendingCharge | OwedLoss) -> str:
    """``owed`` as the log lines name it."""
    if isinstance(owed, OwedLoss):
        return f"{owed.usd} USD to {owed.vendor} on {owed.day} (event {owed.event_id})"
    settlement = owed.settlement
    return (f"key {settlement.reservation.api_key}, request {settlement.reservation.reservation_id}, "
            f"{settlement.micro_usd} micro-USD")


def _owed_void_field(pending: PendingCharge) -> dict[str, dict[str, str]]:
    """The log record's ``owed_void`` field: the journal's line for ``pending``, so that a void
    whose data directory was lost too (its pod deleted) can still be made from the logs
    (``boltgate voids make``)."""
    return {FIELDS: {OWED_VOID_FIELD: owed_line(pending).decode()}}


def _owed_loss_field(loss: OwedLoss) -> dict[str, dict[str, str]]:
    """The log record's ``owed_loss`` field: the journal's line for ``loss``, so that a loss whose
    data directory was lost too can still be booked from the logs (``boltgate voids make``)."""
    return {FIELDS: {OWED_LOSS_FIELD: owed_loss_line(loss).decode()}}
