"""The webhook of a job's end: the event signed with the submitting key's secret, the outcome kept
with the job, and never a second POST once a run of the job delivered it or gave up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

import orjson
import pytest

from core.errors import BoltgateError
from core.state.memory import MemoryStateStore
from proxy.gateway import Gateway
from proxy.jobs.book import JobBook
from proxy.jobs.notice import notify
from proxy.jobs.queue import InProcessJobQueue
from proxy.jobs.record import HeldCredits, JobEnd, JobRecord, error_object, new_job_id
from proxy.jobs.service import JobService
from proxy.jobs.signature import verify_signature
from proxy.jobs.view import job_view
from proxy.jobs.webhook import WebhookSender
from proxy.jobs.webhook_secret import WebhookSecrets
from proxy.settings import WebhookConfig
from tests.proxy.jobs.receiver import WebhookReceiver


@pytest.fixture
async def service() -> AsyncIterator[JobService]:
    """A job service on a memory store whose webhooks may reach loopback; ``notify`` never
    reaches its gateway (the run is over by then), so it has none."""
    store = MemoryStateStore()
    sender = WebhookSender(WebhookConfig(allowed_hosts=["127.0.0.1"]))
    yield JobService(cast(Gateway, None), JobBook(store, retention_s=3600), InProcessJobQueue(store), sender,
                     WebhookSecrets(store), queued_hold_s=60)
    await sender.aclose()


def failed_job(webhook_url: str) -> tuple[JobRecord, JobEnd]:
    record = JobRecord(id=new_job_id(), key_id="key-a", body={"prompt": "a lighthouse"}, base_url="http://gw",
                       held=HeldCredits("r1", 4000, None, None), webhook_url=webhook_url, phase="running", runs=1)
    return record, JobEnd("failed", error=error_object(BoltgateError("the vendor failed")))


async def test_the_end_is_posted_signed_with_the_key_s_secret_and_its_outcome_kept(
        service: JobService, receiver: WebhookReceiver) -> None:
    record, end = failed_job(receiver.url)
    await service.book.save(record)

    await notify(service, record, end)

    [call] = receiver.received
    assert verify_signature(await service.secrets.secret_for("key-a"), call.body, call.headers["Boltgate-Signature"])
    event = orjson.loads(call.body)
    assert (event["id"], event["type"]) == (record.id, "image.job.failed")
    assert event["data"] == orjson.loads(orjson.dumps(job_view(record, end)))
    assert await service.book.webhook_outcome(record.id) == {"delivered": True, "attempts": 1, "status": 200,
                                                             "error": None}


@pytest.mark.parametrize("delivered", [True, False])
async def test_a_webhook_an_earlier_run_delivered_or_gave_up_on_is_not_posted_again(
        service: JobService, receiver: WebhookReceiver, delivered: bool) -> None:
    record, end = failed_job(receiver.url)
    await service.book.save(record)
    earlier = {"delivered": delivered, "attempts": 6, "status": 200 if delivered else 500, "error": None}
    await service.book.record_webhook(record.id, earlier)

    await notify(service, record, end)  # a POST would have been answered before it returns

    assert receiver.received == []
    assert await service.book.webhook_outcome(record.id) == earlier
