"""Build the job service and its runner over a built gateway and its stores."""

from __future__ import annotations

from dataclasses import dataclass

from core.state.base import StateStore
from proxy.gateway import Gateway
from proxy.jobs.book import JobBook
from proxy.jobs.queue import InProcessJobQueue, JobQueue
from proxy.jobs.runner import JobRunner
from proxy.jobs.service import JobService
from proxy.jobs.webhook import WebhookSender
from proxy.jobs.webhook_secret import WebhookSecrets
from proxy.settings import Settings
from proxy.shutdown import Closer


@dataclass(frozen=True, slots=True)
class Jobs:
    service: JobService
    runner: JobRunner

    def closers(self) -> list[Closer]:
        """In the order of opening (``close_all`` closes the last first): the runner stops
        before the webhook sender and the queue it uses close."""
        return [Closer("job queue", self.service.queue.aclose),
                Closer("webhook sender", self.service.webhooks.aclose),
                Closer("job runner", self.runner.stop, within_s=self.runner.longest_stop_s)]


def build_job_queue(settings: Settings, durable: StateStore) -> JobQueue:
    """Redis Streams when the state is in Redis (replicas, restarts); else in process."""
    if settings.state_backend == "redis":
        from core.state.redis import RedisStateStore
        from proxy.jobs.redis_queue import RedisStreamJobQueue

        assert isinstance(durable, RedisStateStore), "the redis state backend keeps durable state in Redis"
        return RedisStreamJobQueue(durable.client, durable.key_prefix, timeout_s=settings.state_timeout_s,
                                   reclaim_idle_s=settings.jobs.reclaim_idle_s,
                                   consumer_expiry_s=settings.jobs.consumer_expiry_s)
    return InProcessJobQueue(durable)


async def start_jobs(settings: Settings, gateway: Gateway, durable: StateStore) -> Jobs:
    """The service the handlers use and its runner, consuming from now on."""
    config = settings.jobs
    root = config.webhook_root_secret.get_secret_value() if config.webhook_root_secret else None
    service = JobService(gateway, JobBook(durable, retention_s=config.retention_s),
                         build_job_queue(settings, durable), WebhookSender(config.webhook),
                         WebhookSecrets(durable, root), queued_hold_s=config.queued_hold_s)
    runner = JobRunner(service, concurrency=config.concurrency, reclaim_idle_s=config.reclaim_idle_s,
                       stop_grace_s=config.stop_grace_s)
    service.on_cancel = runner.cancel_here
    await runner.start()
    return Jobs(service, runner)
