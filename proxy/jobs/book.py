"""Job records in the durable state store (SQLite or Redis; memory for throwaway runs).

State, each kept ``retention_s``::

    job:<id>           the ``JobRecord`` (JSON): written at submit and when a run starts
    job:<id>:end       the ``JobEnd`` (JSON): written once, with ``set_if_absent``
    job:<id>:webhook   the webhook's delivery (JSON): written when it is delivered or given up
    job:<id>:charge    the charge to settle on the job's first hold (``proxy.kept_charge``),
                       and ``job:<id>:charge:<n>`` on its hold n (``proxy.jobs.holds``): kept
                       before any settle of that hold is sent, so a run again after that run
                       was lost can report the charge, or take it back when the job ends
                       without its images. A job from before derived hold ids may have there
                       the charge of a hold its run drew (``drawn_hold``)

One charge per hold, the first kept: keeping is ``set_if_absent``, and a run that finds a charge
kept for its hold already settles that one, not its own. So whatever lands on a hold is the charge
kept for it, even when two runs of the job are alive at once (the queue reclaimed a run that was
in fact still going): each could keep a charge and send a settle, and only one settle lands, but
it may be either run's. Were the last charge kept the one that counts, the job could report the
price of the run whose settle was refused, and a take-back void that run's amount and tallies
instead of the ones that landed. Nothing is lost by settling the other run's charge: the client
pays once for the one generation it gets (either run's images), and what the other generation
cost its vendor is the gateway's loss, as for any run of a job the client does not pay for.

The end is what decides a job's status. Finishing, failing and cancelling all write it with
``set_if_absent``, so exactly one of them wins in any number of processes: a cancel that lands
while the run finishes either wins (the run's result is dropped) or answers "already finished".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import orjson

from core.errors import KeptChargeUnreadable, StateUnavailable
from core.state.base import StateStore
from pricing.ledger import Reservation
from proxy.billing import PendingCharge
from proxy.jobs.record import JobEnd, JobRecord
from proxy.kept_charge import kept_charge_from_json, kept_charge_json

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RecordWrite:
    """The write that saves a new job's record, for its queue to make in the step that queues it
    (``JobQueue.put``): a record written apart from its queue entry, by a process killed (or a
    connection to Redis cut) between the two, said ``queued`` for good and nothing ran it."""

    key: str
    value: bytes
    ttl_s: float


class JobBook:
    def __init__(self, store: StateStore, *, retention_s: float) -> None:
        self._store = store
        self._retention_s = retention_s

    @property
    def retention_s(self) -> float:
        """How long a job is kept: an older one reads as no such job."""
        return self._retention_s

    async def save(self, record: JobRecord) -> None:
        write = self.record_write(record)
        await self._store.set(write.key, write.value, ttl=write.ttl_s)

    def record_write(self, record: JobRecord) -> RecordWrite:
        return RecordWrite(f"job:{record.id}", record.to_json(), self._retention_s)

    async def get(self, job_id: str) -> JobRecord | None:
        raw = await self._store.get(f"job:{job_id}")
        return None if raw is None else JobRecord.from_json(raw)

    async def end(self, job_id: str) -> JobEnd | None:
        raw = await self._store.get(f"job:{job_id}:end")
        return None if raw is None else JobEnd.from_json(raw)

    async def finish(self, job_id: str, end: JobEnd) -> bool:
        """Write the job's end unless another is written already; True when this one won."""
        return await self._store.set_if_absent(f"job:{job_id}:end", end.to_json(), ttl=self._retention_s)

    async def webhook_outcome(self, job_id: str) -> dict[str, object] | None:
        raw = await self._store.get(f"job:{job_id}:webhook")
        return None if raw is None else dict(orjson.loads(raw))

    async def record_webhook(self, job_id: str, outcome: dict[str, object]) -> None:
        await self._store.set(f"job:{job_id}:webhook", orjson.dumps(outcome), ttl=self._retention_s)

    async def keep_charge(self, job_id: str, pending: PendingCharge, *, hold: int = 0) -> PendingCharge:
        """Keep the charge a run of the job is about to settle on its hold number ``hold``, unless
        one was kept for that hold already: the charge to settle, durable once this returns.
        Settling any other could land a charge the job does not know of (see above). One write
        (``set_if_absent``) when none was; a read more when one was, and ``StateUnavailable``
        when that one cannot be read: nothing must be settled then, and the run fails uncharged
        (``KeptChargeUnreadable`` when the charge kept is certainly another run's: this one's
        vendor cost is then a loss of its own, ``proxy.gateway``)."""
        key = _charge_key(job_id, hold)
        if await self._store.set_if_absent(key, kept_charge_json(pending), ttl=self._retention_s):
            return pending
        try:
            kept = await self._read_charge(job_id, key)
        except StateUnavailable as error:
            raise KeptChargeUnreadable(f"The charge another run of job {job_id} kept for its hold cannot be read "
                                       f"({error.message}); this run's is not sent") from error
        held = pending.settlement.reservation.reservation_id
        if kept is None or kept.settlement.reservation.reservation_id != held:
            raise KeptChargeUnreadable(f"The charge another run of job {job_id} kept for its hold cannot be read; "
                                       "this run's is not sent")
        return kept

    async def kept_charge(self, job_id: str, reservation: Reservation, *, hold: int = 0) -> PendingCharge | None:
        """The charge kept for the job's hold number ``hold`` (``reservation``); None when none
        was, or when what is kept cannot be read or is for another hold (logged: the job's
        charge, if any, is then for an operator)."""
        kept = await self._read_charge(job_id, _charge_key(job_id, hold))
        if kept is None or kept.settlement.reservation.reservation_id == reservation.reservation_id:
            return kept
        # a drawn hold's (kept by a version that drew one after the first was closed), asked for as
        # the first's: ``current_hold`` finds the drawn one current once the first is closed
        log.error("the charge kept for job %s is for hold %s, not for %s", job_id,
                  kept.settlement.reservation.reservation_id, reservation.reservation_id)
        return None

    async def drawn_hold(self, record: JobRecord) -> Reservation | None:
        """The hold a version before derived hold ids drew for the job after its first was closed
        without a charge (``proxy.jobs.holds``), as the charge that version's run kept names it:
        under the first hold's key, the one key those versions wrote. None when the charge kept
        there is the first hold's own, or there is none (or it cannot be read: logged)."""
        kept = await self._read_charge(record.id, _charge_key(record.id, 0))
        if kept is None or kept.settlement.reservation.reservation_id == record.held.reservation_id:
            return None
        return kept.settlement.reservation

    async def _read_charge(self, job_id: str, key: str) -> PendingCharge | None:
        raw = await self._store.get(key)
        if raw is None:
            return None
        try:
            return kept_charge_from_json(raw)
        except ValueError:
            log.exception("the charge kept for job %s cannot be read", job_id)
            return None


def _charge_key(job_id: str, hold: int) -> str:
    """The first hold's is the key that versions with one kept charge per job wrote."""
    return f"job:{job_id}:charge" if hold == 0 else f"job:{job_id}:charge:{hold}"
