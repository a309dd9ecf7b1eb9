"""Job records in the durable state store (SQLite or Redis; memory for throwaway runs).

State, each kept ``retention_s``::

    job:<id>           the ``JobRecord`` (JSON): written at submit and when a run starts
    job:<id>:end       the ``JobEnd`` (JSON): written once, with ``set_if_absent``
    job:<id>:webhook   the webhook's delivery (JSON): written when it is delivered or given up
    job:<id>:charge    the charge a run is about to settle (``proxy.kept_charge``): written
                       before each settle is sent, so a run again after that run was lost can
                       report the charge, or take it back when the job ends without its images

The end is what decides a job's status. Finishing, failing and cancelling all write it with
``set_if_absent``, so exactly one of them wins in any number of processes: a cancel that lands
while the run finishes either wins (the run's result is dropped) or answers "already finished".
"""

from __future__ import annotations

import logging

import orjson

from core.state.base import StateStore
from proxy.billing import PendingCharge
from proxy.jobs.record import JobEnd, JobRecord
from proxy.kept_charge import kept_charge_from_json, kept_charge_json

log = logging.getLogger(__name__)


class JobBook:
    def __init__(self, store: StateStore, *, retention_s: float) -> None:
        self._store = store
        self._retention_s = retention_s

    @property
    def retention_s(self) -> float:
        """How long a job is kept: an older one reads as no such job."""
        return self._retention_s

    async def save(self, record: JobRecord) -> None:
        await self._store.set(f"job:{record.id}", record.to_json(), ttl=self._retention_s)

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

    async def keep_charge(self, job_id: str, pending: PendingCharge) -> None:
        """Keep the charge a run of the job is about to settle (durable once this returns). The
        last one kept is the one that can land: a hold is settled once, and a run settles only
        a hold it found open, after every earlier run of the job was lost."""
        await self._store.set(f"job:{job_id}:charge", kept_charge_json(pending), ttl=self._retention_s)

    async def kept_charge(self, job_id: str) -> PendingCharge | None:
        """The charge a run of the job kept; None when none did, or when what is kept cannot be
        read (logged: the job's charge, if any, is then for an operator)."""
        raw = await self._store.get(f"job:{job_id}:charge")
        if raw is None:
            return None
        try:
            return kept_charge_from_json(raw)
        except ValueError:
            log.exception("the charge kept for job %s cannot be read", job_id)
            return None
