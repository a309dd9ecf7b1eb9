"""One polling mechanism for every job-style vendor (Runflow runs, Eachlabs predictions).

A created job is money: the vendor bills it whether or not anyone reads the answer. So once a
job exists, only the job's own terminal status, the time budget or the client going away ends
the wait. A poll that fails transiently (429, 5xx, a dropped connection) is polled again later,
with backoff, as the vendors' own SDKs do; it never abandons the job for a new one. Polls come
at the pace the vendor documents (``JobProtocol.poll_interval_s``), which a caller may override.

When the wait does end early, the job is cancelled where the vendor publishes a cancel; where it
does not (or the cancel fails, or the job, read once after an accepted cancel, has not ended
unbilled), the job runs on, is billed, and the error says so (``billed``) so that the router
books it as the gateway's loss.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping
from typing import Protocol, TypeVar

from backends.vendors.messages import HttpAnswer, HttpCall, VendorOutput
from backends.vendors.spec import JobProtocol
from core.deadline import Deadline
from core.errors import (
    BackendError,
    ContentFiltered,
    JobAbandoned,
    JobFailed,
    UnusableOutput,
    VendorProtocolError,
    VendorRateLimited,
    VendorTimeout,
    VendorUnavailable,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

CANCEL_TIMEOUT_S = 2.0
MAX_BACKOFF_STEPS = 3
"""Transient poll failures double the wait up to 2**3 times the vendor's poll interval."""
_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")
"""What a job id may look like: it goes into a URL path on the vendor's host."""


class JobClient(Protocol):
    """What polling needs from a backend: its name, its options, a way to send a call and to log a body."""

    @property
    def vendor(self) -> str: ...

    @property
    def options(self) -> Mapping[str, str]: ...

    async def send(self, call: HttpCall, budget: Deadline, *, check: bool = True) -> HttpAnswer: ...

    def excerpt(self, body: bytes | bytearray) -> str:
        """A body fit for a log line: cut short, the route's key and anything key-shaped scrubbed."""
        ...


async def poll_job(
    client: JobClient, job: JobProtocol, created: HttpAnswer, budget: Deadline, interval_s: float
) -> VendorOutput:
    """Wait for the job ``created`` describes; its output, or an error that says what it cost."""
    return await follow_job(client, job, _job_id(client, job, created), budget, interval_s)


async def follow_job(
    client: JobClient, job: JobProtocol, job_id: str, budget: Deadline, interval_s: float
) -> VendorOutput:
    """Wait for the job ``job_id`` (created, or found after its create's answer was lost)."""
    if not _JOB_ID.match(job_id):
        raise UnusableOutput(f"{client.vendor} answered a job id we will not put in a URL: {job_id[:60]!r}")
    try:
        return await _wait(client, job, job_id, budget, interval_s)
    except (JobFailed, UnusableOutput, ContentFiltered):
        raise  # the job ended at the vendor: nothing left to stop
    except BackendError as error:
        abandoned = await asyncio.shield(_abandon(client, job, job_id, error.message))
        raise abandoned from error
    except asyncio.CancelledError as cancelled:
        abandoned = await asyncio.shield(_abandon(client, job, job_id, "the request was cancelled"))
        # The cancellation goes on; what it left behind (and cost) travels as its cause.
        raise asyncio.CancelledError(*cancelled.args) from abandoned


async def _wait(client: JobClient, job: JobProtocol, job_id: str, budget: Deadline,
                interval_s: float) -> VendorOutput:
    failures = 0
    while True:
        if budget.expired():
            raise VendorTimeout(f"unfinished after {budget.seconds:.1f}s")
        try:
            answer = await client.send(job.poll(job_id, client.options), budget)
        except (VendorUnavailable, VendorRateLimited, VendorTimeout) as error:
            if budget.expired():
                raise
            failures += 1
            log.info("%s job %s: poll failed (%s); polling on", client.vendor, job_id, error.message)
            delay = max(error.retry_after or 0.0, interval_s * 2 ** min(failures, MAX_BACKOFF_STEPS))
        else:
            failures = 0
            state = _read(client, answer, job.read_state)
            if state.phase == "succeeded":
                if state.output is None:
                    raise UnusableOutput(f"{client.vendor} job {job_id} succeeded without output")
                state.output.vendor_request_id = state.output.vendor_request_id or job_id
                return state.output
            if state.phase == "failed":
                reason = f"{state.failure_code or ''} {state.failure_message}".strip()
                kind = ContentFiltered if state.content_filtered else JobFailed
                raise kind(
                    f"{client.vendor} job {job_id} failed: {reason}", vendor_code=state.failure_code,
                    billed=state.billed, run_seconds=state.run_seconds, vendor_cost_usd=state.vendor_cost_usd,
                )
            delay = interval_s
        await asyncio.sleep(max(0.0, min(delay, budget.remaining())))


def _job_id(client: JobClient, job: JobProtocol, created: HttpAnswer) -> str:
    """The created job's id. An answer we can't read it from may still have created (and will
    bill) a job we can never find again: a billed loss, not something to retry."""
    try:
        job_id = _read(client, created, job.job_id)
    except VendorProtocolError as exc:
        raise UnusableOutput(f"{client.vendor} created a job we cannot track: {exc.message}") from exc
    if not _JOB_ID.match(job_id):
        raise UnusableOutput(f"{client.vendor} answered a job id we will not put in a URL: {job_id[:60]!r}")
    return job_id


def _read(client: JobClient, answer: HttpAnswer, reader: Callable[[HttpAnswer], T]) -> T:
    """Apply a pure reader; a body it does not know is logged (truncated) before it fails over."""
    try:
        return reader(answer)
    except (VendorProtocolError, UnusableOutput):
        log.warning("%s answered a body we do not know: %s", client.vendor, client.excerpt(answer.body))
        raise


async def _abandon(client: JobClient, job: JobProtocol, job_id: str, reason: str) -> JobAbandoned:
    """Stop the job where the vendor lets us; the error says whether it will still be billed."""
    stopped = False
    if job.cancel is None:
        log.warning("%s job %s abandoned (%s); %s publishes no cancel, so it runs on and is billed",
                    client.vendor, job_id, reason, client.vendor)
    else:
        try:
            answer = await client.send(job.cancel(job_id, client.options), Deadline(CANCEL_TIMEOUT_S), check=False)
            stopped = 200 <= answer.status < 300
            if stopped:
                log.info("cancelled %s job %s (%s)", client.vendor, job_id, reason)
            else:
                log.warning("%s job %s: cancel answered %d; it may run on and be billed",
                            client.vendor, job_id, answer.status)
        except BackendError as exc:
            log.warning("could not cancel %s job %s: %s", client.vendor, job_id, exc.message)
    billed = not (stopped and job.cancel_stops_billing and await _ended_unbilled(client, job, job_id))
    what = "cancelled" if stopped else "left running"
    return JobAbandoned(f"{client.vendor} job {job_id} abandoned ({reason}); {what}", billed=billed)


async def _ended_unbilled(client: JobClient, job: JobProtocol, job_id: str) -> bool:
    """Whether the job, read once after its cancel was accepted, has ended without a charge.

    An accepted cancel is not a stopped job (Eachlabs: "best-effort for upstream providers ... the
    original prediction may still complete"), so only the job's own state says it will not be
    billed; a job still running, one that finished, or a read that fails is taken as billed."""
    try:
        answer = await client.send(job.poll(job_id, client.options), Deadline(CANCEL_TIMEOUT_S))
        state = job.read_state(answer)
    except BackendError as exc:
        log.warning("%s job %s: could not read it after its cancel (%s); booked as billed",
                    client.vendor, job_id, exc.message)
        return False
    if state.phase == "failed" and not state.billed:
        return True
    log.warning("%s job %s: still %s after its cancel was accepted; booked as billed",
                client.vendor, job_id, state.phase)
    return False
