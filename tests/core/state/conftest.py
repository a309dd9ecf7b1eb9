"""Fixtures for the state stores: one real redis-server for the session, flushed between tests;
a SQLite file per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio

from core.state.base import StateStore
from core.state.ledger_store import LedgerStore
from core.state.memory import MemoryStateStore
from core.state.memory_ledger import MemoryLedgerStore
from core.state.redis import RedisStateStore
from core.state.redis_ledger import RedisLedgerStore
from core.state.sqlite import SqliteStateStore
from core.state.sqlite_database import SqliteDatabase
from core.state.sqlite_ledger import SqliteLedgerStore
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


IMPLEMENTATIONS = ["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)]

REDIS_TIMEOUT_S = 10.0
"""The contract's Redis stores wait longer than a gateway's 2 s: what they specify is what each
operation does, not how soon, and on a loaded test machine 50 holds at once (each opening its own
connection within the time its fence allows, half the timeout) went past 1 s. How a store answers
a Redis that is late is test_redis_outage's, with its own short timeout."""


@pytest.fixture(params=IMPLEMENTATIONS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StateStore]:
    """Each implementation of the StateStore protocol in turn."""
    state: StateStore
    if request.param == "memory":
        state = MemoryStateStore(sweep_interval_s=0.05)
    elif request.param == "sqlite":
        state = SqliteStateStore(SqliteDatabase.in_directory(tmp_path))
    else:
        state = RedisStateStore.from_url(request.getfixturevalue("redis_url"), timeout_s=REDIS_TIMEOUT_S)
    yield state
    await state.aclose()


FORGETTING = ["memory", pytest.param("redis", marks=pytest.mark.redis)]
"""The stores that hold short-lived state in memory, so must drop expired keys unread (SQLite keeps
them on disk until its next sweep, which writes trigger)."""


@pytest.fixture(params=FORGETTING)
async def forgetting_store(request: pytest.FixtureRequest) -> AsyncIterator[StateStore]:
    state: StateStore
    if request.param == "memory":
        state = MemoryStateStore(sweep_interval_s=0.05)
    else:
        state = RedisStateStore.from_url(request.getfixturevalue("redis_url"), timeout_s=REDIS_TIMEOUT_S)
    yield state
    await state.aclose()


StoredKeys = Callable[[StateStore], Awaitable[int]]


@pytest.fixture
def stored_keys(request: pytest.FixtureRequest) -> StoredKeys:
    """How many keys a store holds right now, counted without reading any of them."""
    async def count(state: StateStore) -> int:
        if isinstance(state, MemoryStateStore):
            return state.key_count
        async with redis.asyncio.Redis.from_url(request.getfixturevalue("redis_url")) as client:
            return int(await client.dbsize())

    return count


@pytest.fixture(params=IMPLEMENTATIONS)
async def ledger_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LedgerStore]:
    """Each implementation of the LedgerStore protocol in turn."""
    if request.param == "memory":
        yield MemoryLedgerStore()
    elif request.param == "sqlite":
        book = SqliteLedgerStore(SqliteDatabase.in_directory(tmp_path))
        yield book
        await book.aclose()
    else:
        state = RedisStateStore.from_url(request.getfixturevalue("redis_url"), timeout_s=REDIS_TIMEOUT_S)
        yield RedisLedgerStore(state.client, timeout_s=REDIS_TIMEOUT_S)
        await state.aclose()
