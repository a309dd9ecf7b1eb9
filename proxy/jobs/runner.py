"""The job consumer: a background task of each gateway process (started and stopped by the app's
lifespan) that takes jobs from the queue and runs at most ``concurrency`` at once.

One job, start to finish:

1. its record and end are read; a job that already ended (cancelled while queued, or finished
   by a run whose process died before acknowledging it) only gets its pending webhook;
2. a job handed out more than ``MAX_RUNS`` times (lost mid-run, retried, lost again) fails;
3. otherwise it takes one of its key's ``concurrent_requests`` for as long as it runs (while
   the key has them all in flight, it is handed back to the queue to wait, ``JobQueue.defer``,
   which never counts as a lost run), and runs through ``Gateway.generate``, exactly as a
   synchronous request, with the
   job's hold as its reservation and ``job:<id>`` as its ``Idempotency-Key``, and without
   counting it against the key's per-minute limits again (submit did, once): a retried run
   whose first run was charged replays that answer for free, and in any case the hold (one id
   per job) can be settled only once;
4. while it runs, the queue is told it is alive every ``reclaim_idle_s / 3`` and the job's end
   is read: a cancel from any replica stops the run (the vendor job is cancelled where the
   vendor publishes a cancel, see ``backends.vendors.polling``);
5. the outcome is written as the job's end (unless a cancel won), the webhook is delivered
   (``proxy.jobs.notice``, at most once per job; outside the ``concurrency`` slots: a receiver
   slow to answer holds up no other job),
   and only then is the job acknowledged: a process that dies before leaves it to be re-run
   (or, when it ended already, to have its webhook delivered).

Money across lost runs: each run keeps the charge it is about to settle with the job
(``JobBook.keep_charge``, before the settle is sent), one charge per hold: a run that finds one
kept for its hold already settles that one instead of its own, so what lands on a hold is always
the charge kept for it, even when two runs of the job are alive at once (the queue reclaimed a run
that was only late with its keep-alives). A run again is served on the job's current hold
(``proxy.jobs.holds``: the one placed at submit, or the next one when a run closed it without a
charge); finding it settled, it is served on that hold's charge (``settled_before``: nothing held
or charged again), and the job reports the kept charge as its price. A job that ends without its
images (failed, cancelled, lost ``MAX_RUNS`` times, or a cancel that won over a charged run) ends
uncharged: the charge kept for its current hold is taken back as an unconfirmed one is
(``proxy.jobs.uncharge``: with a refund line in the charge log if it landed, the hold closed if
not, the vendor's cost booked once as the gateway's loss). A cancel does that itself before it
answers, whichever process runs the job; the run's end does it again (taking nothing back twice). A run again
reads the job's end once it found the job's current hold, and runs no further if the job ended:
a cancel writes the end before it closes the current hold, so a run again that finds that hold
closed (and would hold the next one, which nothing closes) sees the end, and one that does not
is on the hold the cancel closes. A first run needs no such read: it is served on the first hold,
which is the current one or closed already.
A run whose settle failed (the ledger refused it: the charge kept for the hold is more than the
hold holds now, after its lease ran out and another run held it again for a cheaper route, and
the budget has no room for the rest; or the store did not confirm it) fails like any other, its
hold neither released nor voided (``proxy.gateway``): that end takes the kept charge back, and a
charge that another run of the job, still alive, landed on the hold is not taken back under the
images it delivered. A run whose settle finds the hold closed without a charge (another run
released it, or the job's end took its charge back) is not paid for, and fails too; so does one
whose charge could not be kept. Either way what its vendor cost is the gateway's loss, booked by
the run (``proxy.gateway``) once with the end's take-back of the same charge.
Only a settled job with no readable kept charge (a record from before charges were kept) is left
for an operator: logged and counted once per job (``boltgate_jobs_charged_without_images_total``).

Stopping (SIGTERM): no new job is taken; running jobs get ``stop_grace_s`` to finish, then their
runs are cancelled (the gateway releases their holds and cancels vendor jobs) and they end
``failed`` with code ``gateway_stopped``, unacknowledged: the next runner delivers their webhook.
A run whose hold was released is never re-run (the hold id would be refused, and a run that was
cancelled just after it was charged must not be charged again). Only a process killed outright
(SIGKILL, OOM, a lost node) leaves a run to be retried.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import Any

from core.errors import AuthenticationFailed, BoltgateError, StateUnavailable
from core.state.ledger_store import HoldState
from pricing.keys import KeyRecord
from pricing.ledger import Reservation
from proxy.api.openai_request import to_image_request
from proxy.best_effort import quietly
from proxy.billing import ANONYMOUS, PendingCharge
from proxy.jobs.holds import JobHold, current_hold, job_hold
from proxy.jobs.notice import notify
from proxy.jobs.queue import Delivery
from proxy.jobs.record import JobEnd, JobRecord, error_object
from proxy.jobs.service import JobService, job_routing
from proxy.jobs.uncharge import uncharge
from proxy.jobs.view import result_of
from proxy.metrics import JOBS_FINISHED, JOBS_RECLAIMED, JOBS_RUNNING, labelled
from proxy.rate_limits import Admission
from proxy.shutdown import cancel_and_wait

log = logging.getLogger(__name__)

MAX_RUNS = 2
"""A job lost mid-run is run once more; lost again, it fails (never silently dropped)."""
STOP_CLEANUP_S = 2.0
"""After the grace, how long cancelled runs get to write their end before the process goes."""
STOP_MARGIN_S = 1.0
"""Beyond the sum of ``stop``'s bounds, before its closer gives up on it (``longest_stop_s``)."""
QUEUE_RETRY_S = 1.0
"""Pause after the queue failed to answer (Redis down) before asking again."""


class JobRunner:
    def __init__(self, service: JobService, *, concurrency: int, reclaim_idle_s: float, stop_grace_s: float) -> None:
        self.service = service
        self._slots = asyncio.Semaphore(concurrency)
        self._keep_alive_s = reclaim_idle_s / 3
        self._stop_grace_s = stop_grace_s
        self._consumer: asyncio.Task[None] | None = None
        self._running: dict[str, asyncio.Task[None]] = {}
        self._slot_freed: set[str] = set()
        """Jobs still handled (their webhook being delivered) whose slot was given back already."""
        self._work: dict[str, asyncio.Task[JobEnd]] = {}
        self._stopping = False

    async def start(self) -> None:
        """Queue again what the previous process left (in-process queue), then start consuming."""
        recovered = await self.service.queue.recover(self.service.book)
        if recovered:
            log.warning("%d unfinished jobs from before the restart were queued again", recovered)
        self._consumer = asyncio.create_task(self._consume(), name="job consumer")

    async def stop(self) -> None:
        """Stop taking jobs; give running ones ``stop_grace_s`` to finish, then cancel them."""
        self._stopping = True
        await self._stop_consuming()
        running = list(self._running.values())
        if not running:
            return
        _, late = await asyncio.wait(running, timeout=self._stop_grace_s)
        for work in list(self._work.values()):
            work.cancel()
        if late:
            _, stuck = await asyncio.wait(late, timeout=STOP_CLEANUP_S)
            # A webhook still retrying (delivered by the next runner), or a state write that hangs.
            await cancel_and_wait(stuck, within_s=STOP_CLEANUP_S, what="job runs still ending")

    @property
    def longest_stop_s(self) -> float:
        """The most ``stop`` takes: the consumer's cancel, the grace, the runs' ends, their cancel
        (each bounded), and a margin for the loop's own turns."""
        return self._stop_grace_s + 3 * STOP_CLEANUP_S + STOP_MARGIN_S

    def cancel_here(self, job_id: str) -> None:
        """Stop a cancelled job's run at once if it runs in this process."""
        work = self._work.get(job_id)
        if work is not None:
            work.cancel()

    async def _stop_consuming(self) -> None:
        """Cancel the consumer until it ends, for at most ``STOP_CLEANUP_S``.

        One cancel is not enough (``proxy.shutdown``): the consumer's could be lost in redis-py's
        ``wait_for`` after a Redis restart, and it went on asking the queue forever, so a SIGTERM'd
        pod waited for its SIGKILL. The loop also checks ``_stopping``; a queue that still does not
        give back (its dependency hung) is left behind, logged, rather than holding the stop."""
        consumer = self._consumer
        if consumer is None:
            return
        await cancel_and_wait({consumer}, within_s=STOP_CLEANUP_S, what="the job consumer")
        if consumer.done() and not consumer.cancelled() and consumer.exception() is not None:
            log.error("the job consumer failed", exc_info=consumer.exception())

    async def _consume(self) -> None:
        while not self._stopping:
            await self._slots.acquire()
            try:
                delivery = await self.service.queue.next()
            except StateUnavailable as error:
                self._slots.release()
                log.warning("the job queue did not answer: %s", error.message)
                await asyncio.sleep(QUEUE_RETRY_S)
                continue
            except BaseException:
                self._slots.release()
                raise
            if delivery is None:
                self._slots.release()
                continue
            if self._stopping:  # handed out as the stop began (a cancel was lost): not run here
                self._slots.release()
                await self.service.queue.retry_later(delivery)
                return
            task = asyncio.create_task(self._handle(delivery), name=f"job {delivery.job_id}")
            self._running[delivery.job_id] = task
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        job_id = task.get_name().removeprefix("job ")
        self._running.pop(job_id, None)
        self._free_slot(job_id)
        self._slot_freed.discard(job_id)

    def _free_slot(self, job_id: str) -> None:
        """Give the job's slot back (once): when its run is over, before its webhook is
        delivered, so that a receiver slow to answer holds up no other job."""
        if job_id not in self._slot_freed:
            self._slot_freed.add(job_id)
            self._slots.release()

    async def _handle(self, delivery: Delivery) -> None:
        keeping = asyncio.create_task(self._keep_alive(delivery))
        try:
            if await self._process(delivery) and not self._stopping:
                await self.service.queue.ack(delivery)
        except StateUnavailable as error:
            log.warning("job %s left for a later run: %s", delivery.job_id, error.message)
            await self.service.queue.retry_later(delivery)
        except Exception:
            log.exception("job %s failed unexpectedly; left for a later run", delivery.job_id)
            await self.service.queue.retry_later(replace(delivery, deliveries=delivery.deliveries + 1))
        finally:
            keeping.cancel()
            await asyncio.gather(keeping, return_exceptions=True)

    async def _keep_alive(self, delivery: Delivery) -> None:
        """Keep the queue entry ours, and stop the run when another replica cancelled the job."""
        book = self.service.book
        while True:
            await asyncio.sleep(self._keep_alive_s)
            try:
                await self.service.queue.keep_alive(delivery)
                end = await book.end(delivery.job_id)
            except StateUnavailable as error:
                log.warning("could not keep job %s alive: %s", delivery.job_id, error.message)
                continue
            if end is not None and end.status == "cancelled":
                self.cancel_here(delivery.job_id)

    async def _process(self, delivery: Delivery) -> bool:
        """Run the job (or finish with it); False when it was handed back to wait (``defer``):
        its key has all its ``concurrent_requests`` in flight."""
        book = self.service.book
        record = await book.get(delivery.job_id)
        if record is None:  # expired past its retention: nothing left to do
            return True
        end = await book.end(record.id)
        if end is not None:  # ended before: cancelled while queued, or its run died before the ack
            await self._settle_up(record, end)
        if end is None and delivery.deliveries > MAX_RUNS:
            labelled(JOBS_RECLAIMED, "failed").inc()
            end = await self._finish(record, JobEnd("failed", error=_lost()))
        elif end is None:
            slot = await self._slot(record)
            if slot is None:
                await self.service.queue.defer(delivery)
                return False
            if delivery.deliveries > 1:
                labelled(JOBS_RECLAIMED, "retried").inc()
            try:
                end = await self._run(record, retried=delivery.deliveries > 1)
            finally:
                await quietly(slot.release(), "give back a job's concurrency slot")  # else its TTL ends it
        if self._stopping:
            return True
        if end is not None and end.status != "cancelled" and record.webhook_url is not None:
            self._free_slot(record.id)
            await notify(self.service, record, end)
        return True

    async def _slot(self, record: JobRecord) -> Admission | None:
        """One of the key's ``concurrent_requests`` for the run, None while they are all in
        flight; a key that is gone takes none (the run fails on it)."""
        try:
            key = await self._key_of(record)
        except AuthenticationFailed:
            return Admission()
        return await self.service.gateway.run_slot(key)

    async def _run(self, record: JobRecord, *, retried: bool) -> JobEnd | None:
        record.phase, record.started, record.runs = "running", time.time(), record.runs + 1
        await self.service.book.save(record)
        work = asyncio.create_task(self._serve(record, retried=retried))
        self._work[record.id] = work
        JOBS_RUNNING.inc()
        try:
            outcome = await asyncio.gather(work, return_exceptions=True)
        finally:
            JOBS_RUNNING.dec()
            self._work.pop(record.id, None)
        result = outcome[0]
        if isinstance(result, asyncio.CancelledError) and self._stopping:
            if await self._charged(record):  # stopped after its charge: the next start serves it on that
                return None
            return await self._finish(record, JobEnd("failed", error=_stopped()))
        if isinstance(result, asyncio.CancelledError):  # cancelled by its owner: the end says so
            return await self._settle_up(record, await self.service.book.end(record.id))
        if isinstance(result, BaseException):
            error = result if isinstance(result, BoltgateError) else BoltgateError("The job failed unexpectedly")
            if not isinstance(result, BoltgateError):
                log.error("job %s failed unexpectedly", record.id, exc_info=result)
            return await self._finish(record, JobEnd("failed", error=error_object(error)))
        assert isinstance(result, JobEnd)
        return await self._finish(record, result)

    async def _serve(self, record: JobRecord, *, retried: bool) -> JobEnd:
        gateway = self.service.gateway
        key = await self._key_of(record)
        idempotency_key = f"job:{record.id}"
        hold = JobHold(0, job_hold(record, 0), HoldState.OPEN)  # a first run: as placed at submit
        charged: PendingCharge | None = None
        if retried:  # the lost run's claim would answer 409 until its TTL: that run is over
            await gateway.billing.ledger.release_idempotency(key.key_id, idempotency_key)
            hold = await current_hold(gateway.billing.ledger, self.service.book, record)
            if (end := await self.service.book.end(record.id)) is not None:
                raise _ended(end)  # see the module's docstring (Money across lost runs)
            if hold.state is HoldState.SETTLED:
                charged = await self.service.book.kept_charge(record.id, hold.reservation, hold=hold.number)
        reservation = self._served_on(hold)

        async def keep_charge(pending: PendingCharge) -> PendingCharge:
            return await self.service.book.keep_charge(record.id, pending, hold=hold.number)

        served = await gateway.generate(
            to_image_request(record.body), base_url=record.base_url, key=key,
            routing=job_routing(record.body, record.route, record.hedge),
            idempotency_key=idempotency_key, reservation=reservation,
            admitted=True,  # counted against the key's rate limits when it was submitted
            keep_charge=keep_charge,
        )
        return JobEnd("succeeded", result=result_of(served, None if charged is None else charged.charge))

    @staticmethod
    def _served_on(hold: JobHold) -> Reservation:
        """The reservation a job's run is served on. A lost run (its process stopped or was
        killed) may have settled the job's hold before its answer was kept: the job is paid for,
        so it is served on that charge (``settled_before``: held and charged nothing more). One
        that gave its hold back (it failed, or a void took its charge back) left a hold closed
        for good: the run is served on the job's next hold (``proxy.jobs.holds``)."""
        if hold.state is HoldState.SETTLED:
            return replace(hold.reservation, settled_before=True)
        return hold.reservation

    async def _key_of(self, record: JobRecord) -> KeyRecord:
        if record.key_id == ANONYMOUS.key_id:
            return ANONYMOUS
        key = await self.service.gateway.billing.keys.get(record.key_id)
        if key is None or key.revoked:
            raise AuthenticationFailed("The key that submitted this job was revoked before it ran")
        return key

    async def _charged(self, record: JobRecord) -> bool:
        """Whether the job's hold was settled: its run must then end served, not failed."""
        hold = await current_hold(self.service.gateway.billing.ledger, self.service.book, record)
        return hold.state is HoldState.SETTLED

    async def _finish(self, record: JobRecord, end: JobEnd) -> JobEnd | None:
        """Write ``end`` unless the job already ended (a cancel won); the end that stands."""
        if await self.service.book.finish(record.id, end):
            labelled(JOBS_FINISHED, end.status).inc()
            return await self._settle_up(record, end)
        return await self._settle_up(record, await self.service.book.end(record.id))

    async def _settle_up(self, record: JobRecord, end: JobEnd | None) -> JobEnd | None:
        """Make the money follow the end that stands: a job that ended without its images is
        uncharged. After the end is written, never before: a run that failed must not take back
        the charge of another run of the job that delivered (a reclaimed run racing one still
        alive) unless that run's success lost to its end. A process that dies in between leaves
        the job unacknowledged, and its next delivery finds the end and settles up then."""
        if end is not None and end.status != "succeeded":
            await uncharge(self.service.gateway.billing, self.service.book, record)
        return end


def _lost() -> dict[str, Any]:
    error = BoltgateError(f"The job's run was lost {MAX_RUNS} times (its gateway process died "
                          "mid-run); it was not run again and the credits held for it were released")
    error.code = "job_lost"
    return error_object(error)


def _ended(end: JobEnd) -> BoltgateError:
    error = BoltgateError(f"The job ended ({end.status}) before its run again found its hold; it is not run")
    error.code = "job_finished"
    return error


def _stopped() -> dict[str, Any]:
    error = BoltgateError("The gateway stopped while the job ran; the run was cancelled and the "
                          "credits held for it released (submit it again)")
    error.code = "gateway_stopped"
    return error_object(error)



