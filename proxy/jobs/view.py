"""What a client sees of a job (``GET /v1/images/jobs/{id}`` and the webhook's ``data``)."""

from __future__ import annotations

from typing import Any

from proxy.billing import Charge
from proxy.gateway import ImagesResponse
from proxy.jobs.record import JobEnd, JobRecord

_BILLING_FIELDS = ("images", "cost_usd", "credits", "cost_display")


def result_of(served: ImagesResponse, charged: Charge | None = None) -> dict[str, Any]:
    """The images, their cost and how they were served, from the gateway's answer (a replayed
    answer carries the original's body and headers, so a retried job reports the first cost).
    ``charged``: what the job was charged when that was not this answer's charge (a run again
    served on a lost run's charge, kept with the job)."""
    body, headers = served.body, served.headers
    billed = charged.billing() if charged is not None else body.get("billing") or body.get("usage") or {}
    result: dict[str, Any] = {key: body[key] for key in ("data", "output_format", "size", "seed") if key in body}
    result["billing"] = {key: billed[key] for key in _BILLING_FIELDS if key in billed}
    result["served"] = {
        "vendor": headers.get("x-boltgate-backend"),
        "region": headers.get("x-boltgate-region"),
        "attempts": int(headers.get("x-boltgate-attempts", "0")),
    }
    return result


def job_view(record: JobRecord, end: JobEnd | None, webhook: dict[str, object] | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": record.id,
        "object": "image.job",
        "status": record.phase if end is None else end.status,
        "created_at": int(record.created),
        "started_at": None if record.started is None else int(record.started),
        "finished_at": None if end is None else int(end.finished),
        "runs": record.runs,
        "webhook_url": record.webhook_url,
    }
    if end is not None and end.result is not None:
        view.update(end.result)
    if end is not None and end.error is not None:
        view["error"] = end.error
    if webhook is not None:
        view["webhook"] = webhook
    return view
