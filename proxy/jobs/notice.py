"""The webhook a job's end sends: the event (``image.job.<status>``, with the job as ``GET
/v1/jobs/{id}`` shows it), signed with the submitting key's secret and POSTed at most once per
job, whichever run of it gets there; the outcome is kept with the job.

Apart from the runner (``proxy.jobs.runner``), which decides *when* it is sent (after the end is
written, outside the concurrency slots, before the job is acknowledged): what is sent, and the
rule that an earlier run's outcome (delivered, or given up) stands, are a matter of their own,
and the runner is long enough without them. The POST itself is ``proxy.jobs.webhook``'s.
"""

from __future__ import annotations

import contextlib
import time

import orjson

from core.errors import StateUnavailable
from proxy.jobs.record import JobEnd, JobRecord
from proxy.jobs.service import JobService
from proxy.jobs.view import job_view


async def notify(service: JobService, record: JobRecord, end: JobEnd) -> None:
    """POST the webhook unless an earlier run already delivered it (or gave up)."""
    book = service.book
    if await book.webhook_outcome(record.id) is not None:
        return
    assert record.webhook_url is not None
    payload = orjson.dumps({
        "id": record.id,
        "type": f"image.job.{end.status}",
        "created_at": int(time.time()),
        "data": job_view(record, end),
    })
    secret = await service.secrets.secret_for(record.key_id)
    outcome = await service.webhooks.deliver(record.webhook_url, payload, secret)
    with contextlib.suppress(StateUnavailable):
        await book.record_webhook(record.id, outcome.to_dict())
