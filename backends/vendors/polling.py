"""One polling mechanism for every job-style vendor (Runflow runs, Eachlabs predictions).

The interval starts short and backs off, never past the request's deadline. When the time budget
runs out, the client goes away (the task is cancelled) or a poll fails, the vendor job is
cancelled where the vendor offers it, so no money is spent on an answer nobody waits for.

The loop reaches the vendor only through the ``send`` callable it is given (``VendorBackend.send``),
so polling knows nothing of the backend that drives it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol, TypeVar

from backends.vendors.messages import HttpAnswer, HttpCall, VendorOutput
from backends.vendors.spec import JobProtocol, Options
from core.deadline import Deadline
from core.errors import BackendError, JobAbandoned, JobFailed, VendorProtocolError, VendorTimeout

log = logging.getLogger(__name__)
T = TypeVar("T")

FIRST_INTERVAL_S = 0.1
MAX_INTERVAL_S = 1.0
BACKOFF = 1.5
CANCEL_TIMEOUT_S = 2.0


class SendCall(Protocol):
    """Sends one call within a budget; with ``check``, a vendor error status raises its typed error."""

    async def __call__(self, call: HttpCall, budget: Deadline, *, check: bool = True) -> HttpAnswer: ...


async def poll_job(
    job: JobProtocol, created: HttpAnswer, budget: Deadline, *, send: SendCall, vendor: str, options: Options
) -> VendorOutput:
    """Poll the job ``created`` started until it ends; its output, or a typed error."""
    job_id = _read(vendor, created, job.job_id)
    latest = created
    interval = FIRST_INTERVAL_S
    try:
        while True:
            await asyncio.sleep(min(interval, budget.remaining()))
            if budget.expired():
                raise JobAbandoned(f"{vendor} job {job_id} unfinished after {budget.seconds:.1f}s")
            latest = await send(job.poll(job_id, options), budget)
            state = _read(vendor, latest, job.read_state)
            if state.phase == "succeeded":
                if state.output is None:
                    raise VendorProtocolError(f"{vendor} job {job_id} succeeded without output")
                state.output.vendor_request_id = state.output.vendor_request_id or job_id
                return state.output
            if state.phase == "failed":
                reason = f"{state.failure_code or ''} {state.failure_message}".strip()
                raise JobFailed(
                    f"{vendor} job {job_id} failed: {reason}",
                    billed=state.billed, vendor_code=state.failure_code,
                    run_seconds=state.run_seconds, vendor_cost_usd=state.vendor_cost_usd,
                )
            interval = min(interval * BACKOFF, MAX_INTERVAL_S)
    except JobFailed:
        raise
    except (BackendError, asyncio.CancelledError) as error:
        # Whatever ends our wait (deadline, client gone, a poll we cannot read) leaves the job
        # running and billing; the router may start another, so stop this one.
        await asyncio.shield(_cancel(send, vendor, lambda: job.cancel(job_id, latest, options), job_id))
        if isinstance(error, VendorTimeout):
            # A poll times out only when the job's budget runs out while it is in flight.
            raise JobAbandoned(f"{vendor} job {job_id} unfinished after {budget.seconds:.1f}s") from error
        raise


def _read(vendor: str, answer: HttpAnswer, reader: Callable[[HttpAnswer], T]) -> T:
    """Apply a pure reader; a body it does not know is logged (truncated) before it fails over."""
    try:
        return reader(answer)
    except VendorProtocolError:
        log.warning("%s answered a body we do not know: %s", vendor, answer.body[:500])
        raise


async def _cancel(send: SendCall, vendor: str, cancel_call: Callable[[], HttpCall | None], job_id: str) -> None:
    try:
        call = cancel_call()
        if call is None:
            return
        await send(call, Deadline(CANCEL_TIMEOUT_S), check=False)
        log.info("cancelled %s job %s", vendor, job_id)
    except BackendError as exc:
        log.warning("could not cancel %s job %s: %s", vendor, job_id, exc)
