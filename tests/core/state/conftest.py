"""Fixtures for the state stores: one real redis-server for the session, flushed between tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
import redis
import redis.asyncio

from core.state.base import StateStore
from core.state.memory import MemoryStateStore
from core.state.redis import RedisStateStore
from tests.redis_server import RedisServer, RedisServerMissing


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    server = RedisServer()
    try:
        url = server.start()
    except RedisServerMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    yield url
    server.stop()


@pytest.fixture
def redis_url(redis_server_url: str) -> str:
    """The session's server, emptied so that no test sees another's keys."""
    with redis.Redis.from_url(redis_server_url) as client:
        client.flushdb()
    return redis_server_url


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[StateStore]:
    """Each implementation of the StateStore protocol in turn."""
    state: StateStore
    if request.param == "memory":
        state = MemoryStateStore(sweep_interval_s=0.05)
    else:
        state = RedisStateStore.from_url(request.getfixturevalue("redis_url"))
    yield state
    await state.aclose()


StoredKeys = Callable[[StateStore], Awaitable[int]]


@pytest.fixture
def stored_keys(request: pytest.FixtureRequest) -> StoredKeys:
    """How many keys a store holds right now, counted without reading any of them."""
    async def count(state: StateStore) -> int:
        if isinstance(state, MemoryStateStore):
            return len(state)
        async with redis.asyncio.Redis.from_url(request.getfixturevalue("redis_url")) as client:
            return int(await client.dbsize())

    return count
