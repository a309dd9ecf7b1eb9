"""One polling mechanism for every job-style vendor (Runflow runs, Eachlabs predictions).

The interval starts short and backs off, never past the request's deadline. When the time budget
runs out, the client goes away (the task is cancelled) or a poll fails, the vendor job is
cancelled where the vendor offers it, so no money is spent on an answer nobody waits for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from backends.vendors.messages import HttpAnswer, VendorOutput
from backends.vendors.spec import JobProtocol
from core.deadline import Deadline
from core.errors import BackendError, JobAbandoned, JobFailed, VendorProtocolError, VendorTimeout

if TYPE_CHECKING:
    from backends.vendors.backend import VendorBackend

log = logging.getLogger(__name__)
T = TypeVar("T")

FIRST_INTERVAL_S = 0.1
MAX_INTERVAL_S = 1.0
BACKOFF = 1.5
CANCEL_TIMEOUT_S = 2.0


async def poll_job(
    backend: VendorBackend, job: JobProtocol, created: HttpAnswer, budget: Deadline
) -> VendorOutput:
    job_id = _read(backend, created, job.job_id)
    latest = created
    interval = FIRST_INTERVAL_S
    try:
        while True:
            await asyncio.sleep(min(interval, budget.remaining()))
            if budget.expired():
                raise JobAbandoned(f"{backend.vendor} job {job_id} unfinished after {budget.seconds:.1f}s")
            latest = await backend.send(job.poll(job_id, backend.options), budget)
            state = _read(backend, latest, job.read_state)
            if state.phase == "succeeded":
                if state.output is None:
                    raise VendorProtocolError(f"{backend.vendor} job {job_id} succeeded without output")
                state.output.vendor_request_id = state.output.vendor_request_id or job_id
                return state.output
            if state.phase == "failed":
                reason = f"{state.failure_code or ''} {state.failure_message}".strip()
                raise JobFailed(
                    f"{backend.vendor} job {job_id} failed: {reason}",
                    billed=state.billed, vendor_code=state.failure_code,
                    run_seconds=state.run_seconds, vendor_cost_usd=state.vendor_cost_usd,
                )
            interval = min(interval * BACKOFF, MAX_INTERVAL_S)
    except JobFailed:
        raise
    except (BackendError, asyncio.CancelledError) as error:
        # Whatever ends our wait (deadline, client gone, a poll we cannot read) leaves the job
        # running and billing; the router may start another, so stop this one.
        await asyncio.shield(_cancel(backend, job, job_id, latest))
        if isinstance(error, VendorTimeout):
            # A poll times out only when the job's budget runs out while it is in flight.
            raise JobAbandoned(f"{backend.vendor} job {job_id} unfinished after {budget.seconds:.1f}s") from error
        raise


def _read(backend: VendorBackend, answer: HttpAnswer, reader: Callable[[HttpAnswer], T]) -> T:
    """Apply a pure reader; a body it does not know is logged (truncated) before it fails over."""
    try:
        return reader(answer)
    except VendorProtocolError:
        log.warning("%s answered a body we do not know: %s", backend.vendor, answer.body[:500])
        raise


async def _cancel(backend: VendorBackend, job: JobProtocol, job_id: str, latest: HttpAnswer) -> None:
    try:
        call = job.cancel(job_id, latest, backend.options)
        if call is None:
            return
        await backend.send(call, Deadline(CANCEL_TIMEOUT_S), check=False)
        log.info("cancelled %s job %s", backend.vendor, job_id)
    except BackendError as exc:
        log.warning("could not cancel %s job %s: %s", backend.vendor, job_id, exc)
