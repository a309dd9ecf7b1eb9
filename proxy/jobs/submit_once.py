"""A submit that queues a job, made once per ``Idempotency-Key``: a client retrying a submit
whose answer it lost gets the job the first one queued, never a second one held and charged.

Used by ``POST /v1/images/jobs`` and the vendor doors' creates (``proxy.doors.runs``). The job's
id is chosen first and kept in the key's claim (``proxy.claims``), in the one write that claims
the key, so the claim is what remembers the job: a process killed after queueing it, before
answering, leaves a retry answering that job. The claim is given up only when no job was queued,
or the one queued has ended (uncharged) already; a submit cut off before its job was queued,
whose claim could not be given up either, answers a retry "in progress" for a minute, then a 409
saying nothing was charged. The same key with another request is a 409.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from core.errors import IdempotencyConflict, InvalidRequest, NotFound, StateUnavailable
from pricing.keys import KeyRecord
from proxy.api.openai_request import to_image_request
from proxy.best_effort import quietly
from proxy.claims import CLAIM_GRACE_S, Claim, HeldClaim, claim, refuse_held
from proxy.jobs.record import JobEnd, JobRecord, new_job_id
from proxy.jobs.service import Accepted, JobService
from proxy.jobs.view import job_view
from proxy.replays import refuse_another_request
from proxy.routing.choice import RoutingChoice

Queued = TypeVar("Queued")


@dataclass(frozen=True, slots=True)
class Replayed:
    """The job an earlier submit under the key queued, and its end so far."""

    record: JobRecord
    end: JobEnd | None


async def submit_once(jobs: JobService, key: KeyRecord, slot: str, fingerprint: str,
                      enqueue: Callable[[str], Awaitable[Queued]]) -> Queued | Replayed:
    """What ``enqueue`` answers for a job it queues with the id it is given, when ``key`` holds
    ``slot`` first; else the job the submit that holds it queued (``Replayed``)."""
    ledger = jobs.gateway.billing.ledger
    job_id = new_job_id()
    held = await claim(ledger, key.key_id, slot, Claim(fingerprint, run=job_id))
    if held is not None:
        return await _replayed(jobs, held, fingerprint, key, slot)
    try:
        return await enqueue(job_id)
    except BaseException:
        if not await _may_still_run(jobs, job_id):
            await quietly(ledger.release_idempotency(key.key_id, slot), "release an idempotency claim")
        raise


async def _may_still_run(jobs: JobService, job_id: str) -> bool:
    """Whether a job a failed submit made is queued and has not ended (it may yet be charged,
    so its key stays claimed); when the store cannot say, it may."""
    try:
        return await jobs.book.get(job_id) is not None and await jobs.book.end(job_id) is None
    except StateUnavailable:
        return True


async def _replayed(jobs: JobService, held: HeldClaim, fingerprint: str, key: KeyRecord, slot: str) -> Replayed:
    """The job ``held`` names; a 409 when there is none to answer."""
    if held.claim is not None and held.claim.run is not None:
        refuse_another_request({"fingerprint": held.claim.fingerprint}, fingerprint)
        job_id = held.claim.run
    else:  # a claim from before claims kept their job: the job was remembered apart
        remembered = await jobs.gateway.billing.ledger.recall_response(key.key_id, slot)
        if remembered is None:
            refuse_held(held, fingerprint, CLAIM_GRACE_S)
        stored = orjson.loads(remembered)
        refuse_another_request(stored, fingerprint)
        job_id = stored["run"]
    try:
        record = await jobs.owned(job_id, key)
    except NotFound:
        if held.age_s >= jobs.book.retention_s:
            raise IdempotencyConflict("This Idempotency-Key's run has expired and cannot be answered again",
                                      param="Idempotency-Key", code="idempotent_replay_expired") from None
        refuse_held(held, fingerprint, CLAIM_GRACE_S,  # not queued yet, or never will be
                    unavailable="This Idempotency-Key's create was cut off before its run was queued; nothing "
                    "was charged. Send the create again with a new Idempotency-Key")
    return Replayed(record, await jobs.book.end(record.id))


def fingerprint(asked_for: dict[str, Any], routing: RoutingChoice) -> str:
    """What a submit asked for (``asked_for``: its fields as the client sent them, under one
    name) and what it asked of the router, as the claim keeps it."""
    asked_of_router = [routing.policy, routing.vendor, routing.region, routing.hedge]
    raw = orjson.dumps({**asked_for, "router": asked_of_router}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(raw).hexdigest()


async def submit_job_once(jobs: JobService, payload: Any, key: KeyRecord, base_url: str, asked: RoutingChoice,
                          idempotency_key: str) -> Accepted:
    """``POST /v1/images/jobs`` under an ``Idempotency-Key``: the job queued once; a retry answers
    it as it is now, with ``x-boltgate-idempotent-replay``, never a second job held and charged."""
    if not isinstance(payload, dict):
        raise InvalidRequest("The request body must be a JSON object", param=None)
    # A bad body is its 400 before the key is claimed (and before it is fingerprinted).
    to_image_request({name: value for name, value in payload.items() if name != "webhook_url"}, strict=True)
    outcome = await submit_once(jobs, key, f"jobs:{idempotency_key}", fingerprint({"submit": payload}, asked),
                                lambda job_id: jobs.submit(payload, key, base_url, asked, job_id=job_id))
    if not isinstance(outcome, Replayed):
        return outcome
    webhook = await jobs.book.webhook_outcome(outcome.record.id)
    return Accepted(job_view(outcome.record, outcome.end, webhook), {"x-boltgate-idempotent-replay": "true"})
