"""Submit, look up and cancel jobs, each for one client key.

Submit checks everything a synchronous request would before anything runs: the body (the same
validation as ``/v1/images/generations``), the webhook URL (the outbound policy), the key's rate
limits per minute (counted here, once: 429 with Retry-After and ``x-ratelimit-*`` at submit, and
the run is not counted again; the key's ``concurrent_requests`` is not taken here but by the run,
for as long as it runs, see ``proxy.jobs.runner``), the routing policy, pinned route and hedging
it asks for (403 beyond what the key may), a route able to serve it, and the credits, held
through the same ledger call as a synchronous request (``Billing.hold_for`` on the first route
the budget covers; none: the same 402).

The hold is placed for a request's lease (the deadline plus ``reservation_grace_s``, as a
synchronous request's), and renewed for ``queued_hold_s`` only once the job's record and queue
entry are written: a submit cut off between the two (its process killed, its store cut off, so
its clean-up could not run) leaves no job, and its hold must not keep the key's credits for an
hour. The renew is best effort (each counted, ``boltgate_jobs_hold_renewals_total`` by outcome:
renewed, refused, failed): one that fails leaves the job queued on the short lease (its run
holds again when it finds it expired, and is refused, failing uncharged, if the budget no longer
covers it), and one that comes after the job's run closed the hold (the runner took the job at
once) finds it closed and holds nothing again. One that lands while the run holds it only
lengthens a lease the run's settle or release closes anyway. Then the run renews it for its own
lease.

A job belongs to the key that submitted it: any other key is told it does not exist (404),
so job ids cannot be probed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from core.errors import InsufficientCredits, InvalidRequest, NoBackendAvailable, NotFound, StateUnavailable
from core.request import ImageRequest
from pricing.keys import KeyRecord
from pricing.ledger import Reservation
from proxy.api.openai_request import to_image_request
from proxy.gateway import Gateway
from proxy.jobs.book import JobBook
from proxy.jobs.queue import JobQueue
from proxy.jobs.record import JOB_ID, HeldCredits, JobEnd, JobRecord, error_object, new_job_id
from proxy.jobs.uncharge import uncharge
from proxy.jobs.view import job_view
from proxy.jobs.webhook import WebhookSender
from proxy.jobs.webhook_secret import WebhookSecrets
from proxy.metrics import JOBS_FINISHED, JOBS_HOLD_RENEWALS, labelled
from proxy.routing.choice import DEFAULT_CHOICE, RoutingChoice

log = logging.getLogger(__name__)


def job_routing(body: dict[str, Any], route: str | None = None, hedge: bool | None = None) -> RoutingChoice:
    """What a job asked of the router, at submit and at run: its body's ``routing_policy``, and
    the route it pinned and its hedging switch as its record keeps them (``JobRecord.route``,
    ``JobRecord.hedge``)."""
    return replace(RoutingChoice.asked(body.get("routing_policy"), route), hedge=hedge)


@dataclass(frozen=True, slots=True)
class Accepted:
    """A submitted job as its owner sees it, and the rate-limit headers of the submit."""

    job: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class JobService:
    def __init__(self, gateway: Gateway, book: JobBook, queue: JobQueue, webhooks: WebhookSender,
                 secrets: WebhookSecrets, *, queued_hold_s: float,
                 on_cancel: Callable[[str], None] = lambda job_id: None) -> None:
        self.gateway = gateway
        self.book = book
        self.queue = queue
        self.webhooks = webhooks
        self.secrets = secrets
        self.queued_hold_s = queued_hold_s
        self.on_cancel = on_cancel
        """Called with a cancelled job's id: the runner stops it at once if it runs here."""

    async def submit(self, payload: Any, key: KeyRecord, base_url: str, asked: RoutingChoice = DEFAULT_CHOICE,
                     job_id: str | None = None) -> Accepted:
        """``POST /v1/images/jobs``: the body of a generation plus ``webhook_url``, and the route
        and hedging its headers ``asked`` for; the job as the client sees it, with the submit's
        rate-limit headers. ``job_id``: as ``enqueue`` takes it (under an ``Idempotency-Key``,
        ``proxy.jobs.submit_once`` chooses it)."""
        if not isinstance(payload, dict):
            raise InvalidRequest("The request body must be a JSON object", param=None)
        body = dict(payload)
        webhook_url = body.pop("webhook_url", None)
        if webhook_url is not None and not isinstance(webhook_url, str):
            raise InvalidRequest("webhook_url must be a string (an https URL)", param="webhook_url")
        record, headers = await self.enqueue(body, key, base_url, webhook_url=webhook_url, asked=asked,
                                             job_id=job_id)
        return Accepted(job_view(record, None), headers)

    async def enqueue(self, body: dict[str, Any], key: KeyRecord, base_url: str, *, webhook_url: str | None = None,
                      door: dict[str, Any] | None = None, asked: RoutingChoice = DEFAULT_CHOICE,
                      job_id: str | None = None) -> tuple[JobRecord, dict[str, str]]:
        """Check a generation body, admit it under the key's rate limits, hold its credits and
        queue it; the job's record and the admission's rate-limit headers. ``door``: the vendor
        door it came in by (``JobRecord.door``); ``asked``: the pinned route and hedging switch
        (the policy is the body's), checked against the key here and kept with the job; ``job_id``:
        the id it gets, when the caller chose it beforehand (a door's create keeps it in its
        Idempotency-Key's claim), else a new one."""
        request = to_image_request(body, strict=True)
        if request.response_format == "b64_json":
            raise InvalidRequest("A job's images are always answered as URLs; drop response_format "
                                 "or set it to 'url'", param="response_format")
        route = asked.describe_pin() if asked.pinned else None
        routing = job_routing(body, route, asked.hedge)
        routing.check_allowed(key.routing)
        if webhook_url is not None:
            self.webhooks.check(webhook_url)
        admission = await self.gateway.admit(key, request.n, in_flight=False)  # the run takes a slot
        try:
            reservation = await self._hold(request, key, routing)
            record = JobRecord(job_id or new_job_id(), key.key_id, body, base_url, HeldCredits.of(reservation),
                               webhook_url, door=door, route=route, hedge=asked.hedge)
            try:
                await self.queue.put(record.id, self.book.record_write(record))  # one write: see JobQueue.put
            except BaseException:
                await self._abandon(record, reservation)
                raise
            await self._hold_while_queued(record, reservation)
        finally:
            try:
                await admission.release()
            except StateUnavailable as error:  # the lease ends with its TTL
                log.warning("could not release a concurrency lease after a submit: %s", error.message)
        return record, admission.headers

    async def _abandon(self, record: JobRecord, reservation: Reservation) -> None:
        """Best effort after a failed submit: the lease frees the hold anyway if the store is down."""
        unqueued = StateUnavailable("The job could not be queued; nothing was charged")
        try:
            await self.book.finish(record.id, JobEnd("failed", error=error_object(unqueued)))
            await self.gateway.billing.ledger.release(reservation)
        except StateUnavailable as error:
            log.warning("could not clean up job %s after a failed submit: %s", record.id, error.message)

    async def _hold_while_queued(self, record: JobRecord, reservation: Reservation) -> None:
        """Renew the submit's hold for ``queued_hold_s`` now that the job is queued (see the
        module's docstring for why only now, and why a renew that fails changes nothing else)."""
        try:
            renewed = await self.gateway.billing.ledger.renew(reservation, lease_s=self.queued_hold_s)
        except StateUnavailable as error:
            labelled(JOBS_HOLD_RENEWALS, "failed").inc()
            log.warning("job %s is queued, but its hold was not renewed while it waits (its run holds again "
                        "if the lease ran out): %s", record.id, error.message)
            return
        labelled(JOBS_HOLD_RENEWALS, "renewed" if renewed else "refused").inc()
        if not renewed:
            log.info("job %s: its hold was closed, or could not be held again, before the submit renewed it; "
                     "its run holds what it needs", record.id)

    @property
    def _request_lease_s(self) -> float:
        """A synchronous request's lease: what a submit's hold lasts until its job is queued."""
        return self.gateway.deadline_s + self.gateway.reservation_grace_s

    async def _hold(self, request: ImageRequest, key: KeyRecord, routing: RoutingChoice) -> Reservation:
        """Hold what the first route the budget covers could charge, as a synchronous request's
        first attempt would (a route whose price the budget cannot cover is passed over)."""
        billing = self.gateway.billing
        routes, skipped = await self.gateway.router.candidates(request, routing)
        if not routes:
            raise NoBackendAvailable("No route can serve this request", skipped=skipped)
        refusal: InsufficientCredits | None = None
        for route in routes:
            try:
                return await billing.hold_for(None, key, route, request, lease_s=self._request_lease_s)
            except InsufficientCredits as refused:
                refusal = refusal or refused
        assert refusal is not None, "every route was tried"
        raise refusal

    async def owned(self, job_id: str, key: KeyRecord) -> JobRecord:
        """The job when ``key`` owns it; 404 for anyone else, exactly as for no such job."""
        record = await self.book.get(job_id) if JOB_ID.match(job_id) else None
        if record is None or record.key_id != key.key_id:
            raise NotFound(f"No job with id {job_id}", param="job_id", code="job_not_found")
        return record

    async def view(self, job_id: str, key: KeyRecord) -> dict[str, Any]:
        record = await self.owned(job_id, key)
        return job_view(record, await self.book.end(job_id), await self.book.webhook_outcome(job_id))

    async def cancel(self, job_id: str, key: KeyRecord) -> dict[str, Any]:
        """Cancel a queued or running job. Its end is written first, then its current hold is
        closed before this answers (``proxy.jobs.uncharge``): the one a run is charged on now,
        which after a run gave the first back is a later one, not the first. So nothing stays
        held or charged: a run's settle sent afterwards finds the hold closed and charges
        nothing, and a charge that landed before (the run had not written its end) is taken
        back. A run going here is stopped at once and its vendor job cancelled where the vendor
        allows; one in another process stops when its keep-alive reads the end."""
        record = await self.owned(job_id, key)
        if not await self.book.finish(job_id, JobEnd("cancelled")):
            end = await self.book.end(job_id)
            status = end.status if end is not None else "finished"
            raise InvalidRequest(f"Job {job_id} already {status}; it cannot be cancelled",
                                 param="job_id", status_code=409, code="job_finished")
        labelled(JOBS_FINISHED, "cancelled").inc()
        self.on_cancel(job_id)
        await uncharge(self.gateway.billing, self.book, record)
        return job_view(record, await self.book.end(job_id))
