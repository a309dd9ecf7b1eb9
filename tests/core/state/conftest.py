"""Fixtures for the state stores: one real redis-server for the session, flushed between tests;
a SQLite file per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis

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


@pytest.fixture(params=IMPLEMENTATIONS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StateStore]:
    """Each implementation of the StateStore protocol in turn."""
    state: StateStore
    if request.param == "memory":
        state = MemoryStateStore()
    elif request.param == "sqlite":
        state = SqliteStateStore(SqliteDatabase.in_directory(tmp_path))
    else:
        state = RedisStateStore.from_url(request.getfixturevalue("redis_url"))
    yield state
    await state.aclose()


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
        state = RedisStateStore.from_url(request.getfixturevalue("redis_url"))
        yield RedisLedgerStore(state.client)
        await state.aclose()
