"""Group commit: the ledger writes of one turn of the event loop share one commit, and each
caller is still answered only once its write is in the file, alone in what it undoes."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from core.errors import StateUnavailable
from core.state.ledger_store import Balance, Settled, Tally
from core.state.sqlite_database import SqliteDatabase
from core.state.sqlite_group_commit import GroupCommit
from core.state.sqlite_ledger import SqliteLedgerStore


@pytest.fixture
def database(tmp_path: Path) -> SqliteDatabase:
    return SqliteDatabase.in_directory(tmp_path, busy_timeout_s=0.1)


def commits_of(database: SqliteDatabase) -> list[str]:
    """The COMMIT statements the connection runs from now on."""
    seen: list[str] = []
    database.connection.set_trace_callback(seen.append)
    return seen


def tally(name: str) -> Callable[[sqlite3.Connection], int]:
    """A write of one tally row named ``name``."""
    def work(db: sqlite3.Connection) -> int:
        db.execute("INSERT INTO tallies (name, field, amount) VALUES (?, 'f', 1)", (name,))
        return 1
    return work


def tallies_in_file(database: SqliteDatabase) -> set[str]:
    """What another connection (another process) reads from the file: only what is committed."""
    with sqlite3.connect(database.path) as other:
        return {name for (name,) in other.execute("SELECT name FROM tallies")}


async def test_holds_asked_for_in_one_turn_share_one_commit(database: SqliteDatabase) -> None:
    store = SqliteLedgerStore(database)
    statements = commits_of(database)

    held = await asyncio.gather(*(store.hold("key", f"hold-{i}", 10, limit=1000, lease_s=60) for i in range(10)))

    assert held == [True] * 10
    assert [s for s in statements if s == "COMMIT"] == ["COMMIT"]
    assert (await store.balance("key")).held == 100


async def test_writes_in_one_batch_see_each_other_so_a_limit_is_never_passed(database: SqliteDatabase) -> None:
    store = SqliteLedgerStore(database)

    held = await asyncio.gather(*(store.hold("key", f"hold-{i}", 30, limit=100, lease_s=60) for i in range(5)))

    assert held == [True, True, True, False, False]
    assert (await store.balance("key")).held == 90


async def test_a_refused_settle_undoes_only_itself(database: SqliteDatabase) -> None:
    store = SqliteLedgerStore(database)
    assert await store.hold("key", "live", 50, limit=100, lease_s=60)
    statements = commits_of(database)

    outcomes = await asyncio.gather(
        store.settle("key", "gone", 80, limit=100),  # no live hold and 50 + 80 > 100: refused
        store.settle("key", "live", 40, limit=100, tallies=[Tally("spend", "x", 40)]),
        store.count("event-1", [Tally("images", "x", 1)]),
    )

    assert outcomes == [Settled.REFUSED, Settled.CHARGED, True]
    assert [s for s in statements if s == "COMMIT"] == ["COMMIT"]
    assert (await store.balance("key")).spent == 40
    assert await store.table("images") == {"x": 1}
    assert await store.settle("key", "gone", 10, limit=100) is Settled.CHARGED  # the refusal closed nothing


async def test_a_refused_settle_alone_in_its_turn_writes_nothing(database: SqliteDatabase) -> None:
    store = SqliteLedgerStore(database)
    assert await store.hold("key", "live", 50, limit=100, lease_s=60)

    assert await store.settle("key", "gone", 80, limit=100, tallies=[Tally("spend", "x", 80)]) is Settled.REFUSED

    assert await store.balance("key") == Balance(spent=0, held=50)
    assert await store.table("spend") == {}
    assert await store.settle("key", "gone", 10, limit=100) is Settled.CHARGED  # the refusal closed nothing


async def test_a_write_alone_in_its_turn_needs_no_savepoint_and_a_batch_one_each(database: SqliteDatabase) -> None:
    group = GroupCommit(database)
    statements = commits_of(database)

    assert await group.write(tally("alone")) == 1
    assert [s for s in statements if s.startswith("SAVEPOINT")] == []
    assert await asyncio.gather(group.write(tally("a")), group.write(tally("b"))) == [1, 1]
    assert [s for s in statements if s.startswith("SAVEPOINT")] == ["SAVEPOINT write", "SAVEPOINT write"]
    assert tallies_in_file(database) == {"alone", "a", "b"}


async def test_a_write_alone_that_fails_writes_nothing_and_its_caller_gets_the_error(
        database: SqliteDatabase) -> None:
    group = GroupCommit(database)

    def fails(db: sqlite3.Connection) -> int:
        db.execute("INSERT INTO tallies (name, field, amount) VALUES ('failed', 'f', 1)")
        raise ValueError("broken")

    def fails_in_the_database(db: sqlite3.Connection) -> int:
        db.execute("INSERT INTO tallies (name, field, amount) VALUES ('failed too', 'f', 1)")
        db.execute("INSERT INTO no_such_table VALUES (1)")
        return 1

    with pytest.raises(ValueError, match="broken"):
        await group.write(fails)
    with pytest.raises(StateUnavailable, match="could not be written"):
        await group.write(fails_in_the_database)
    assert tallies_in_file(database) == set()
    assert await group.write(tally("later")) == 1  # the connection is usable again


async def test_a_write_that_fails_is_undone_alone_and_its_caller_gets_the_error(database: SqliteDatabase) -> None:
    group = GroupCommit(database)

    def fails(db: sqlite3.Connection) -> int:
        db.execute("INSERT INTO tallies (name, field, amount) VALUES ('failed', 'f', 1)")
        raise ValueError("broken")

    outcomes = await asyncio.gather(group.write(tally("first")), group.write(fails), group.write(tally("third")),
                                    return_exceptions=True)

    assert outcomes[0] == 1 and outcomes[2] == 1
    assert isinstance(outcomes[1], ValueError)
    assert tallies_in_file(database) == {"first", "third"}


async def test_a_batch_the_database_refuses_answers_every_caller_503_and_writes_nothing(
        database: SqliteDatabase) -> None:
    group = GroupCommit(database)
    other = sqlite3.connect(database.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock past the busy timeout
    try:
        outcomes = await asyncio.gather(group.write(tally("a")), group.write(tally("b")), return_exceptions=True)
    finally:
        other.execute("ROLLBACK")
        other.close()

    assert all(isinstance(outcome, StateUnavailable) for outcome in outcomes)
    assert tallies_in_file(database) == set()
    assert await group.write(tally("later")) == 1  # the connection is usable again


async def test_a_caller_is_answered_only_once_its_write_is_in_the_file(database: SqliteDatabase) -> None:
    group = GroupCommit(database)

    assert await group.write(tally("durable")) == 1
    assert tallies_in_file(database) == {"durable"}


async def test_a_caller_cancelled_before_the_flush_writes_nothing(database: SqliteDatabase) -> None:
    group = GroupCommit(database)
    cancelled = asyncio.create_task(group.write(tally("cancelled")))
    await asyncio.sleep(0)  # the write is queued; the flush runs after this task's next step
    cancelled.cancel()

    assert await group.write(tally("kept")) == 1
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert tallies_in_file(database) == {"kept"}
