"""Where submitted jobs wait for a runner: the interface, and the in-process queue.

Two implementations: ``InProcessJobQueue`` (an ``asyncio.Queue``, for the embedded default with
memory or SQLite state: one process) and ``RedisStreamJobQueue`` (``proxy.jobs.redis_queue``:
a Redis Stream read through a consumer group, shared by replicas and surviving restarts).

A ``Delivery`` is one hand-out of a job to a runner. ``deliveries`` counts the hand-outs of the
same job: more than one means an earlier run was lost (its process died mid-run).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

from core.state.base import StateStore
from proxy.jobs.book import JobBook, RecordWrite

OPEN = "jobs:open"
RETRY_LATER_S = 1.0
"""How long a job the runner could not finish with (in process), or did not start (``defer``),
waits before it is handed out again."""


@dataclass(frozen=True, slots=True)
class Delivery:
    job_id: str
    deliveries: int = 1
    entry_id: str = ""
    """The queue's own id of the entry (a stream entry id); empty in process."""


class JobQueue(Protocol):
    async def put(self, job_id: str, record: RecordWrite | None = None) -> None:
        """Save a new job's ``record`` and queue the job, so that either both are done or the
        record alone was never written (a process killed between them, or a store cut off: a
        record without its queue entry would say ``queued`` and never run); None: queue only.
        Raises ``StateUnavailable`` when the queue cannot take it."""
        ...

    async def next(self) -> Delivery | None:
        """The next job to run, waiting a little for one; None when none came (call again)."""
        ...

    async def keep_alive(self, delivery: Delivery) -> None:
        """Tell the queue the job is still being worked on (it must not be handed out again)."""
        ...

    async def ack(self, delivery: Delivery) -> None:
        """The job is done with: never hand it out again."""
        ...

    async def retry_later(self, delivery: Delivery) -> None:
        """The runner could not finish with the job (the state store did not answer): hand it
        out again later."""
        ...

    async def defer(self, delivery: Delivery) -> None:
        """The runner did not start the job (its key has all its ``concurrent_requests`` in
        flight): hand it out again after a pause (``RETRY_LATER_S``), as the same delivery, so
        waiting never counts as a lost run."""
        ...

    async def recover(self, book: JobBook) -> int:
        """At start: queue again what the last process left unacknowledged; how many."""
        ...

    async def aclose(self) -> None: ...


class InProcessJobQueue:
    """An ``asyncio.Queue`` of job ids, plus the ids not yet acknowledged in the durable store
    (``jobs:open``, a hash: the field is set at put and removed at ack, so the hash holds only
    jobs still open and does not grow with every job ever run). The asyncio queue is gone when the process
    stops; with SQLite state the open ids are not, and ``recover`` queues them again at start
    (with memory state both are gone, as is everything else)."""

    def __init__(self, store: StateStore, wait_s: float = 1.0) -> None:
        self._store = store
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue()
        self._wait_s = wait_s

    async def put(self, job_id: str, record: RecordWrite | None = None) -> None:
        """Marked open, then the record written, then handed out: a process killed before the
        record leaves a mark that ``recover`` drops (no record); after, one it runs."""
        await self._store.hincr(OPEN, job_id, 1)
        if record is not None:
            await self._store.set(record.key, record.value, ttl=record.ttl_s)
        self._queue.put_nowait(Delivery(job_id))

    async def recover(self, book: JobBook) -> int:
        """Each unacknowledged job, handed out once more than it was run (a job that was running
        when the process stopped counts as a lost run)."""
        recovered = 0
        for job_id, count in (await self._store.hgetall(OPEN)).items():
            if count <= 0:  # acknowledged, left by a version that counted down instead of removing
                await self._store.hdel(OPEN, job_id)
                continue
            record = await book.get(job_id)
            if record is None:  # expired past its retention: nothing left to run
                await self._store.hdel(OPEN, job_id)
                continue
            self._queue.put_nowait(Delivery(job_id, record.runs + 1))
            recovered += 1
        return recovered

    async def next(self) -> Delivery | None:
        try:
            return await asyncio.wait_for(self._queue.get(), self._wait_s)
        except TimeoutError:
            return None

    async def keep_alive(self, delivery: Delivery) -> None:
        return None

    async def ack(self, delivery: Delivery) -> None:
        await self._store.hdel(OPEN, delivery.job_id)

    async def retry_later(self, delivery: Delivery) -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(RETRY_LATER_S, self._queue.put_nowait, delivery)

    async def defer(self, delivery: Delivery) -> None:
        """Queued again after the pause; the runner's slot is free meanwhile."""
        await self.retry_later(delivery)

    async def aclose(self) -> None:
        return None
