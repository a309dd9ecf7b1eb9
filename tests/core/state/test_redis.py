"""What only the Redis store promises: replicas sharing one server share state, under a prefix."""

from __future__ import annotations

import asyncio

import pytest
import redis

from core.state.redis import RedisStateStore

pytestmark = pytest.mark.redis


async def test_two_replicas_see_each_others_writes(redis_url: str) -> None:
    first, second = RedisStateStore.from_url(redis_url), RedisStateStore.from_url(redis_url)
    try:
        await first.set("image:abc", b"png", ttl=30.0)
        assert await second.get("image:abc") == b"png"
        assert await second.set_if_absent("image:abc", b"other") is False

        await first.incr("breaker:runflow", 2, ttl=30.0)
        assert await second.incr("breaker:runflow") == 3

        await second.hincr("ledger", "eachlabs", 5)
        assert await first.hgetall("ledger") == {"eachlabs": 5}

        await second.delete("image:abc")
        assert await first.get("image:abc") is None
    finally:
        await first.aclose()
        await second.aclose()


async def test_incr_within_is_atomic_across_replicas(redis_url: str) -> None:
    replicas = [RedisStateStore.from_url(redis_url) for _ in range(2)]
    try:
        calls = [replicas[i % 2].incr_within("budget", 3, limit=60) for i in range(50)]
        results = await asyncio.gather(*calls)
        assert sorted(value for value in results if value is not None) == list(range(3, 61, 3))
        assert await replicas[0].get("budget") == b"60"
    finally:
        for replica in replicas:
            await replica.aclose()


async def test_leases_are_shared_and_atomic_across_replicas(redis_url: str) -> None:
    replicas = [RedisStateStore.from_url(redis_url) for _ in range(2)]
    try:
        calls = [replicas[i % 2].acquire_lease("concurrent:key", f"req-{i}", 5, 30.0) for i in range(30)]
        results = await asyncio.gather(*calls)
        assert sorted(value for value in results if value is not None) == [1, 2, 3, 4, 5]
        holder = next(f"req-{i}" for i, value in enumerate(results) if value is not None)
        await replicas[1].release_lease("concurrent:key", holder)
        assert await replicas[0].acquire_lease("concurrent:key", "late", 5, 30.0) == 5
    finally:
        for replica in replicas:
            await replica.aclose()


async def test_state_outlives_the_replica_that_wrote_it(redis_url: str) -> None:
    writer = RedisStateStore.from_url(redis_url)
    await writer.set("idem:key", b"response")
    await writer.aclose()
    reader = RedisStateStore.from_url(redis_url)
    try:
        assert await reader.get("idem:key") == b"response"
    finally:
        await reader.aclose()


async def test_keys_live_under_the_prefix_and_prefixes_do_not_collide(redis_url: str) -> None:
    tenant_a = RedisStateStore.from_url(redis_url, key_prefix="a:")
    tenant_b = RedisStateStore.from_url(redis_url, key_prefix="b:")
    try:
        await tenant_a.set("k", b"from-a")
        await tenant_b.incr_within("k", 1, limit=5)
        assert await tenant_b.get("k") == b"1"
        assert await tenant_a.get("k") == b"from-a"
    finally:
        await tenant_a.aclose()
        await tenant_b.aclose()
    with redis.Redis.from_url(redis_url) as raw:
        assert sorted(raw.keys("*")) == [b"a:k", b"b:k"]


async def test_default_prefix_is_boltgate(redis_url: str) -> None:
    store = RedisStateStore.from_url(redis_url)
    try:
        await store.set("k", b"v")
    finally:
        await store.aclose()
    with redis.Redis.from_url(redis_url) as raw:
        assert raw.get("boltgate:k") == b"v"
