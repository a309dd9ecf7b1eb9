"""The Redis Streams queue on a real redis-server: one consumer group shared by runners."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from core.state.redis import RedisStateStore
from proxy.jobs.book import JobBook
from proxy.jobs.record import HeldCredits, JobRecord
from proxy.jobs.redis_queue import RedisStreamJobQueue
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis


@pytest.fixture
async def store() -> AsyncIterator[RedisStateStore]:
    with RedisServer() as url:
        state = RedisStateStore.from_url(url)
        yield state
        await state.aclose()


def runner(store: RedisStateStore, reclaim_idle_s: float = 0.2) -> RedisStreamJobQueue:
    return RedisStreamJobQueue(store.client, store.key_prefix, timeout_s=2.0, reclaim_idle_s=reclaim_idle_s,
                               wait_s=0.05)


async def test_each_job_goes_to_one_runner() -> None:
    with RedisServer() as url:
        store = RedisStateStore.from_url(url)
        first, second = runner(store), runner(store)
        await first.put("job_a")
        await second.put("job_b")
        taken = [await first.next(), await second.next(), await first.next(), await second.next()]
        await store.aclose()
    handed = sorted(delivery.job_id for delivery in taken if delivery is not None)
    assert handed == ["job_a", "job_b"]
    assert all(delivery is None or delivery.deliveries == 1 for delivery in taken)


async def test_a_job_whose_runner_went_quiet_is_handed_out_again_with_its_count(store: RedisStateStore) -> None:
    dead, heir, third = runner(store), runner(store), runner(store)
    await dead.put("job_a")
    first = await dead.next()
    assert first is not None and first.deliveries == 1
    assert await heir.next() is None  # not idle long enough yet

    await asyncio.sleep(0.3)
    second = await heir.next()
    await asyncio.sleep(0.3)
    again = await third.next()

    assert second is not None and (second.job_id, second.deliveries) == ("job_a", 2)
    assert again is not None and (again.job_id, again.deliveries) == ("job_a", 3)


async def test_a_runner_that_keeps_its_job_alive_keeps_it(store: RedisStateStore) -> None:
    owner, other = runner(store), runner(store)
    await owner.put("job_a")
    delivery = await owner.next()
    assert delivery is not None
    for _ in range(4):
        await asyncio.sleep(0.1)
        await owner.keep_alive(delivery)
        assert await other.next() is None


async def test_an_acknowledged_job_is_never_handed_out_again(store: RedisStateStore) -> None:
    owner, other = runner(store), runner(store)
    await owner.put("job_a")
    delivery = await owner.next()
    assert delivery is not None
    await owner.ack(delivery)
    await asyncio.sleep(0.3)
    assert await other.next() is None
    assert await store.client.xlen(f"{store.key_prefix}jobs:stream") == 0


async def test_a_second_runner_joins_the_existing_group(store: RedisStateStore) -> None:
    await runner(store).put("job_a")
    late = runner(store)
    delivery = await late.next()
    assert delivery is not None and delivery.job_id == "job_a"



async def consumers(store: RedisStateStore) -> dict[str, int]:
    """The group's consumers and how many entries each has pending."""
    listed = await store.client.xinfo_consumers(f"{store.key_prefix}jobs:stream", "runners")
    return {(entry["name"].decode() if isinstance(entry["name"], bytes) else entry["name"]): int(entry["pending"])
            for entry in listed}


async def idle_past(store: RedisStateStore, consumer: str, seconds: float) -> None:
    """Wait until Redis reports ``consumer`` idle longer than ``seconds``."""
    async with asyncio.timeout(5):
        while True:
            listed = await store.client.xinfo_consumers(f"{store.key_prefix}jobs:stream", "runners")
            idle = {entry["name"].decode(): int(entry["idle"]) for entry in listed}
            if idle[consumer] > seconds * 1000:
                return
            await asyncio.sleep(0.02)


def sweeping(store: RedisStateStore, *, reclaim_idle_s: float = 30.0) -> RedisStreamJobQueue:
    """A runner that forgets consumers idle 0.1 s (as a live one never is between its reads)."""
    return RedisStreamJobQueue(store.client, store.key_prefix, timeout_s=2.0, reclaim_idle_s=reclaim_idle_s,
                               wait_s=0.05, consumer_expiry_s=0.1)


async def test_a_runner_gone_with_nothing_pending_is_forgotten_by_the_others(store: RedisStateStore) -> None:
    gone = runner(store)
    await gone.put("job_a")
    delivery = await gone.next()
    assert delivery is not None
    await gone.ack(delivery)
    assert await consumers(store) == {gone.consumer: 0}

    live = sweeping(store)
    async with asyncio.timeout(5):  # its reads sweep once gone has been idle 0.1 s
        while gone.consumer in await consumers(store):
            await live.next()
    await live.put("job_b")
    taken = await live.next()

    assert taken is not None and taken.job_id == "job_b"
    assert await consumers(store) == {live.consumer: 1}


async def test_a_gone_runner_that_still_owns_a_job_is_kept_until_the_job_is_taken_over(
        store: RedisStateStore) -> None:
    gone = runner(store)
    heir = sweeping(store, reclaim_idle_s=0.5)
    await gone.put("job_a")
    assert await gone.next() is not None
    await idle_past(store, gone.consumer, 0.1)
    assert await heir.forget_idle_consumers() == []  # idle, but job_a is still pending on it
    assert (await consumers(store))[gone.consumer] == 1

    async with asyncio.timeout(5):
        taken = None
        while taken is None:
            taken = await heir.next()

    assert taken.job_id == "job_a" and taken.deliveries == 2
    assert await heir.forget_idle_consumers() == [gone.consumer]
    assert await consumers(store) == {heir.consumer: 1}


async def test_a_deferred_job_is_handed_out_again_once_with_its_count_unchanged(
    store: RedisStateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("proxy.jobs.redis_queue.RETRY_LATER_S", 0.0)
    first, second = runner(store, reclaim_idle_s=0.2), runner(store, reclaim_idle_s=0.2)
    await first.put("job_a")
    handed = await first.next()
    assert handed is not None

    await first.defer(handed)
    again = await second.next()
    assert again is not None and (again.job_id, again.deliveries) == ("job_a", 1)
    await second.ack(again)
    await asyncio.sleep(0.3)  # past reclaim_idle_s: the entry deferred was not left pending, to be reclaimed
    nothing = [await first.next(), await second.next()]

    assert nothing == [None, None]


async def test_a_deferred_job_that_was_reclaimed_before_keeps_its_count(
    store: RedisStateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("proxy.jobs.redis_queue.RETRY_LATER_S", 0.0)
    dead, heir, later = runner(store), runner(store), runner(store)
    await dead.put("job_a")
    assert await dead.next() is not None
    await asyncio.sleep(0.3)
    reclaimed = await heir.next()
    assert reclaimed is not None and reclaimed.deliveries == 2

    await heir.defer(reclaimed)
    again = await later.next()

    assert again is not None and (again.job_id, again.deliveries) == ("job_a", 2)  # a wait is not a lost run


async def test_a_jobs_record_and_its_stream_entry_are_written_in_one_step(store: RedisStateStore) -> None:
    """Both or neither (``MULTI``/``EXEC``): a record alone said ``queued`` and never ran."""
    book = JobBook(store, retention_s=60)
    queue = runner(store)
    record = JobRecord("job_whole", "key", {"prompt": "x"}, "http://gw/", HeldCredits("hold", 1000, None, None))

    await queue.put(record.id, book.record_write(record))

    delivery = await queue.next()
    assert delivery is not None and delivery.job_id == "job_whole"
    assert await book.get("job_whole") == record
