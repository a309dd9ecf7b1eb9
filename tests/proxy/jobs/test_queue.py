"""The in-process queue: an asyncio queue, plus the unacknowledged ids in the durable store."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.state.sqlite import SqliteStateStore
from core.state.sqlite_database import SqliteDatabase
from proxy.jobs import queue as queue_module
from proxy.jobs.book import JobBook
from proxy.jobs.queue import OPEN, Delivery, InProcessJobQueue
from proxy.jobs.record import HeldCredits, JobRecord

HELD = HeldCredits("hold", 1000, None, None)


def sqlite_store(path: Path) -> SqliteStateStore:
    return SqliteStateStore(SqliteDatabase.in_directory(path))


async def test_jobs_come_out_in_order_and_none_when_empty(tmp_path: Path) -> None:
    queue = InProcessJobQueue(sqlite_store(tmp_path), wait_s=0.01)
    await queue.put("job_a")
    await queue.put("job_b")
    assert [await queue.next(), await queue.next(), await queue.next()] == [Delivery("job_a"), Delivery("job_b"), None]


async def test_a_restart_queues_again_what_was_not_acknowledged_counting_its_runs(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    book = JobBook(store, retention_s=60)
    before = InProcessJobQueue(store)
    for job_id, runs in (("job_done", 1), ("job_queued", 0), ("job_running", 1)):
        await book.save(JobRecord(job_id, "key", {"prompt": "x"}, "http://gw/", HELD, runs=runs))
        await before.put(job_id)
    done = await before.next()
    assert done is not None
    await before.ack(done)

    after = InProcessJobQueue(sqlite_store(tmp_path), wait_s=0.01)
    recovered = await after.recover(JobBook(sqlite_store(tmp_path), retention_s=60))

    assert recovered == 2
    assert {await after.next(), await after.next()} == {Delivery("job_queued", 1), Delivery("job_running", 2)}


async def test_a_job_the_runner_could_not_finish_with_comes_back(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queue_module, "RETRY_LATER_S", 0.01)
    queue = InProcessJobQueue(sqlite_store(tmp_path), wait_s=0.5)
    await queue.retry_later(Delivery("job_a", 2))
    assert await queue.next() == Delivery("job_a", 2)


async def test_an_acknowledged_job_leaves_nothing_in_the_open_jobs(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    queue = InProcessJobQueue(store, wait_s=0.01)
    for job_id in ("job_a", "job_b"):
        await queue.put(job_id)
    first = await queue.next()
    assert first is not None
    await queue.ack(first)
    assert await store.hgetall(OPEN) == {"job_b": 1}
    second = await queue.next()
    assert second is not None
    await queue.ack(second)
    assert await store.hgetall(OPEN) == {}


async def test_a_restart_clears_finished_and_expired_jobs_from_the_open_jobs(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    book = JobBook(store, retention_s=60)
    await book.save(JobRecord("job_open", "key", {"prompt": "x"}, "http://gw/", HELD))
    for job_id, count in (("job_open", 1), ("job_counted_down", 0), ("job_expired", 1)):
        await store.hincr(OPEN, job_id, count)  # job_counted_down: as an older version left it

    queue = InProcessJobQueue(store, wait_s=0.01)
    assert await queue.recover(book) == 1
    assert await store.hgetall(OPEN) == {"job_open": 1}


async def test_a_job_queued_with_its_record_is_run_after_a_restart_one_killed_before_its_record_is_dropped(
    tmp_path: Path
) -> None:
    """The open mark is written before the record: a process killed between the two leaves a
    mark ``recover`` drops (no record: no job); once both are written the job runs. The other way
    round, a record without its mark said ``queued`` for good and nothing ran it."""
    store = sqlite_store(tmp_path)
    book = JobBook(store, retention_s=60)
    before = InProcessJobQueue(store)
    await before.put("job_whole", book.record_write(JobRecord("job_whole", "key", {"prompt": "x"}, "http://gw/",
                                                               HELD)))
    await store.hincr(OPEN, "job_cut", 1)  # killed after the mark, before its record

    after = InProcessJobQueue(sqlite_store(tmp_path), wait_s=0.01)
    assert await after.recover(JobBook(sqlite_store(tmp_path), retention_s=60)) == 1

    assert [await after.next(), await after.next()] == [Delivery("job_whole", 1), None]
    assert await book.get("job_whole") is not None
    assert await store.hgetall(OPEN) == {"job_whole": 1}
