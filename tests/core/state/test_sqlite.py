"""What only the SQLite stores promise: the file keeps keys and money across a restart, and a
database that cannot be written is ``StateUnavailable``, never another error."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from core.errors import StateUnavailable
from core.state.ledger_store import Balance, Settled, Tally
from core.state.sqlite import SqliteStateStore
from core.state.sqlite_database import DATABASE_NAME, SqliteDatabase
from core.state.sqlite_ledger import SqliteLedgerStore


async def test_keys_and_money_survive_closing_and_reopening_the_file(tmp_path: Path) -> None:
    database = SqliteDatabase.in_directory(tmp_path)
    state, book = SqliteStateStore(database), SqliteLedgerStore(database)
    await state.set("apikey:abc", b'{"name": "team"}')
    await state.hincr("apikey:index", "abc", 1)
    await state.set("idem:short", b"x", ttl=0.1)
    assert await book.hold("acct", "settled", 70, limit=100, lease_s=60)
    assert await book.settle("acct", "settled", 60, limit=100, tallies=[Tally("acct:day_usd", "d", 60)])
    assert await book.hold("acct", "in-flight", 25, limit=100, lease_s=0.1)
    database.close()
    await asyncio.sleep(0.15)

    reopened = SqliteDatabase(tmp_path / DATABASE_NAME)
    state, book = SqliteStateStore(reopened), SqliteLedgerStore(reopened)
    try:
        assert await state.get("apikey:abc") == b'{"name": "team"}'
        assert await state.hgetall("apikey:index") == {"abc": 1}
        assert await state.get("idem:short") is None
        assert await book.balance("acct") == Balance(spent=60, held=0)  # the killed request's hold expired
        assert await book.table("acct:day_usd") == {"d": 60}
        assert await book.settle("acct", "settled", 60, limit=100) is Settled.ALREADY_SETTLED
    finally:
        reopened.close()


async def test_two_processes_on_one_file_share_the_budget(tmp_path: Path) -> None:
    first, second = SqliteDatabase.in_directory(tmp_path), SqliteDatabase.in_directory(tmp_path)
    try:
        books = [SqliteLedgerStore(first), SqliteLedgerStore(second)]
        results = [await books[index % 2].hold("acct", f"h{index}", 3, limit=30, lease_s=60) for index in range(20)]
        assert results.count(True) == 10
        assert await books[0].balance("acct") == Balance(spent=0, held=30)
    finally:
        first.close()
        second.close()


async def test_a_database_locked_by_another_writer_is_state_unavailable(tmp_path: Path) -> None:
    database = SqliteDatabase.in_directory(tmp_path, busy_timeout_s=0.05)
    blocker = sqlite3.connect(tmp_path / DATABASE_NAME, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StateUnavailable) as error:
            await SqliteLedgerStore(database).hold("acct", "h1", 1, limit=None, lease_s=60)
        assert error.value.status_code == 503
        with pytest.raises(StateUnavailable):
            await SqliteStateStore(database).set("k", b"v")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        database.close()
    after = SqliteStateStore(SqliteDatabase.in_directory(tmp_path))
    assert await after.get("k") is None
    await after.aclose()


async def test_a_closed_database_is_state_unavailable(tmp_path: Path) -> None:
    database = SqliteDatabase.in_directory(tmp_path)
    database.close()
    with pytest.raises(StateUnavailable):
        await SqliteStateStore(database).get("k")


def test_a_sqlite_too_old_for_the_statements_is_refused_at_start(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 34, 1))
    with pytest.raises(RuntimeError, match=r"3\.35\.0 or later"):
        SqliteDatabase.in_directory(tmp_path)
    assert not (tmp_path / DATABASE_NAME).exists()
