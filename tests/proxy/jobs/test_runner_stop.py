"""The job runner stops, whatever its queue does with the cancel.

On Python 3.11, ``asyncio.wait_for`` (redis-py wraps one around each send) drops a cancel that
arrives in the turn its inner task finished: the consumer's one cancel was lost, it went on
reading the stream, and the gateway's shutdown waited for it forever (seen after a Redis restart
in ``tests/e2e/test_state_outage.py``). These queues lose the cancel, or never give back at all.
"""

from __future__ import annotations

import asyncio
from typing import cast

import pytest

from proxy.jobs import runner as runner_module
from proxy.jobs.queue import Delivery
from proxy.jobs.runner import JobRunner
from proxy.jobs.service import JobService
from tests.proxy.deaf_task import Deaf, ends_within

GENEROUS_S = 30.0
"""Not a measure of speed: only "the stop ended at all" rather than hanging the test run."""


class LosesTheCancel:
    """A queue whose ``next`` swallows the first cancel, as 3.11's ``wait_for`` can, then
    answers ``handed_out`` (None: nothing to run; a delivery: a job handed out just then)."""

    def __init__(self, handed_out: Delivery | None = None) -> None:
        self.handed_out = handed_out
        self.asked = asyncio.Event()
        self.lost = False
        self.given_back: list[Delivery] = []

    async def next(self) -> Delivery | None:
        self.asked.set()
        if self.lost:
            await asyncio.sleep(0.01)  # a blocking read that times out, again and again
            return None
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.lost = True
        return self.handed_out

    async def recover(self, book: object) -> int:
        return 0

    async def retry_later(self, delivery: Delivery) -> None:
        self.given_back.append(delivery)


class NeverGivesBack(LosesTheCancel):
    """A queue whose dependency hangs: ``next`` ignores every cancel until ``unstuck`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.unstuck = asyncio.Event()

    async def next(self) -> Delivery | None:
        self.asked.set()
        while not self.unstuck.is_set():
            try:
                await self.unstuck.wait()
            except asyncio.CancelledError:
                self.lost = True
        return None


class HandsOutOne(LosesTheCancel):
    """A queue that hands out ``delivery`` once, then waits (and takes its cancel)."""

    def __init__(self, delivery: Delivery) -> None:
        super().__init__()
        self.delivery: Delivery | None = delivery

    async def next(self) -> Delivery | None:
        delivery, self.delivery = self.delivery, None
        if delivery is None:
            await asyncio.Event().wait()
        return delivery


class HungBook:
    """A job book whose store hangs: reading a record ignores every cancel."""

    def __init__(self) -> None:
        self.deaf = Deaf()

    async def get(self, job_id: str) -> None:
        await self.deaf.run()


def runner_on(queue: LosesTheCancel, book: object = None) -> JobRunner:
    service = cast(JobService, type("Service", (), {"queue": queue, "book": book})())
    return JobRunner(service, concurrency=2, reclaim_idle_s=30, stop_grace_s=1)


async def started(queue: LosesTheCancel) -> JobRunner:
    runner = runner_on(queue)
    await runner.start()
    await queue.asked.wait()
    return runner


async def test_a_lost_cancel_does_not_keep_the_runner_from_stopping() -> None:
    queue = LosesTheCancel()
    runner = await started(queue)
    await asyncio.wait_for(runner.stop(), GENEROUS_S)
    assert queue.lost


async def test_a_job_handed_out_as_the_stop_began_is_given_back_not_run() -> None:
    delivery = Delivery("job-1", entry_id="1-0")
    queue = LosesTheCancel(handed_out=delivery)
    runner = await started(queue)
    await asyncio.wait_for(runner.stop(), GENEROUS_S)
    assert queue.given_back == [delivery]
    assert not runner._running


async def test_a_queue_that_never_gives_back_is_left_behind_and_the_stop_ends() -> None:
    queue = NeverGivesBack()
    runner = await started(queue)
    await asyncio.wait_for(runner.stop(), GENEROUS_S)
    assert queue.lost
    consumer = runner._consumer
    assert consumer is not None and not consumer.done()
    queue.unstuck.set()  # the test's own clean-up: the consumer left behind ends
    await asyncio.wait_for(consumer, GENEROUS_S)


async def test_a_run_that_swallows_every_cancel_is_left_behind_and_the_stop_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runner_module, "STOP_CLEANUP_S", 0.2)
    book = HungBook()
    runner = runner_on(HandsOutOne(Delivery("job-1", entry_id="1-0")), book)
    await runner.start()
    await book.deaf.started.wait()

    await ends_within(runner.stop(), book.deaf)

    assert book.deaf.cancels >= 2  # cancelled again, not once and then awaited forever
    assert "job-1" in runner._running  # left behind: the next runner takes the job again
    book.deaf.release()  # the test's own clean-up
