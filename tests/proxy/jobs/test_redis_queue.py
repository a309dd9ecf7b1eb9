"""The Redis Streams queue on a real redis-server: one consumer group shared by runners."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from core.state.redis import RedisStateStore
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
