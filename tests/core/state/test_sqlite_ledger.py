"""What only the SQLite ledger store does: expired rows are deleted by a sweep every few writes
(reads never count them meanwhile), a refused settle leaves nothing behind, and a file made with
the earlier rowid tables keeps working."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from core.state.ledger_store import CLOSED_TTL_S, Balance, Settled, Tally, Voided
from core.state.sqlite_database import DATABASE_NAME, SqliteDatabase
from core.state.sqlite_ledger import SqliteLedgerStore

DAY = 86400.0


class Clock:
    """Stands in for the ``time`` module in ``core.state.sqlite_ledger``: wall time moved by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr("core.state.sqlite_ledger.time", fake)
    return fake


def rows(database: SqliteDatabase, table: str) -> int:
    return int(database.connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


async def test_the_sweep_deletes_expired_holds_markers_and_charges_and_keeps_the_rest(
        tmp_path: Path, clock: Clock) -> None:
    database = SqliteDatabase.in_directory(tmp_path)
    book = SqliteLedgerStore(database, charge_log_retention_s=30 * DAY, sweep_every=5)
    assert await book.hold("acct", "abandoned", 10, limit=None, lease_s=60)
    assert await book.hold("acct", "old", 10, limit=None, lease_s=60)
    assert await book.settle("acct", "old", 10, limit=None, entry=b"old charge") is Settled.CHARGED
    assert await book.count("old-event", [Tally("t", "f", 1)])
    clock.now += 31 * DAY  # past the lease, the markers' 7 days and the charge log's 30
    assert (rows(database, "holds"), rows(database, "closed"), rows(database, "charges")) == (1, 2, 1)

    # The first write swept (nothing had expired yet); the 6th is the next to sweep.
    assert await book.hold("acct", "new0", 10, limit=None, lease_s=60)
    assert (rows(database, "holds"), rows(database, "closed"), rows(database, "charges")) == (2, 2, 1)
    assert await book.hold("acct", "new1", 10, limit=None, lease_s=60)
    assert (rows(database, "holds"), rows(database, "closed"), rows(database, "charges")) == (2, 0, 0)  # new0, new1
    assert await book.hold("acct", "new2", 10, limit=None, lease_s=60)
    assert await book.settle("acct", "new0", 10, limit=None, entry=b"new charge") is Settled.CHARGED

    assert [logged.entry for logged in await book.charges(0)] == [b"new charge"]
    assert await book.balance("acct") == Balance(spent=20, held=20)
    assert await book.table("t") == {"f": 1}
    await book.aclose()


async def test_an_expired_marker_counts_as_open_before_any_sweep(tmp_path: Path, clock: Clock) -> None:
    book = SqliteLedgerStore(SqliteDatabase.in_directory(tmp_path), sweep_every=10**6)
    assert await book.count("event", [Tally("t", "f", 1)])
    assert not await book.count("event", [Tally("t", "f", 1)])
    clock.now += CLOSED_TTL_S + 1
    assert await book.count("event", [Tally("t", "f", 1)])
    assert await book.table("t") == {"f": 2}
    await book.aclose()


async def test_a_refused_settle_writes_nothing_and_leaves_the_hold_open(tmp_path: Path, clock: Clock) -> None:
    database = SqliteDatabase.in_directory(tmp_path)
    book = SqliteLedgerStore(database)
    assert await book.hold("acct", "late", 60, limit=100, lease_s=10)
    clock.now += 11
    assert await book.hold("acct", "other", 80, limit=100, lease_s=60)
    assert await book.settle("acct", "late", 60, limit=100, tallies=[Tally("t", "f", 60)],
                             entry=b"late") is Settled.REFUSED
    assert (rows(database, "closed"), await book.table("t"), await book.charges(0)) == (0, {}, [])

    assert await book.release("acct", "other")
    assert await book.settle("acct", "late", 60, limit=100, entry=b"late") is Settled.CHARGED
    assert await book.balance("acct") == Balance(spent=60, held=0)
    await book.aclose()


OLD_MONEY_TABLES = """
CREATE TABLE spent (account TEXT PRIMARY KEY, amount INTEGER NOT NULL);
CREATE TABLE holds (hold_id TEXT PRIMARY KEY, account TEXT NOT NULL, amount INTEGER NOT NULL, expires REAL NOT NULL);
CREATE TABLE closed (marker TEXT PRIMARY KEY, forget_at REAL NOT NULL);
CREATE TABLE tallies (name TEXT NOT NULL, field TEXT NOT NULL, amount INTEGER NOT NULL, PRIMARY KEY (name, field));
"""


async def test_a_file_with_the_earlier_rowid_tables_keeps_working(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / DATABASE_NAME) as earlier:
        earlier.executescript(OLD_MONEY_TABLES)
        earlier.execute("INSERT INTO spent VALUES ('acct', 5)")
    book = SqliteLedgerStore(SqliteDatabase.in_directory(tmp_path), sweep_every=1)
    assert await book.hold("acct", "h1", 50, limit=100, lease_s=60)
    assert not await book.hold("acct", "h2", 50, limit=100, lease_s=60)
    assert await book.settle("acct", "h1", 40, limit=100, tallies=[Tally("t", "f", 40)]) is Settled.CHARGED
    assert await book.settle("acct", "h1", 40, limit=100) is Settled.ALREADY_SETTLED
    assert await book.balance("acct") == Balance(spent=45, held=0)
    assert await book.table("t") == {"f": 40}
    without_rowid = book.database.connection.execute(
        "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'closed' AND sql LIKE '%WITHOUT ROWID%'").fetchone()[0]
    assert without_rowid == 0
    await book.aclose()


async def test_a_file_made_before_closed_hold_kinds_gets_the_column_and_voids_what_it_settles(tmp_path: Path) -> None:
    """``closed.kind`` (what a void reads) is added to an earlier file when it is opened; its old
    rows, of unknown kind, are never taken a charge back from."""
    with sqlite3.connect(tmp_path / DATABASE_NAME) as earlier:
        earlier.executescript(OLD_MONEY_TABLES)
        earlier.execute("INSERT INTO closed VALUES ('settled-before', 1e12)")
        earlier.execute("INSERT INTO spent VALUES ('acct', 40)")
    book = SqliteLedgerStore(SqliteDatabase.in_directory(tmp_path))
    assert await book.void("acct", "settled-before", 40) is Voided.UNCHANGED
    assert await book.hold("acct", "h1", 50, limit=100, lease_s=60)
    assert await book.settle("acct", "h1", 30, limit=100) is Settled.CHARGED
    assert await book.void("acct", "h1", 30) is Voided.REFUNDED
    assert await book.balance("acct") == Balance(spent=40, held=0)
    await book.aclose()
    reopened = SqliteLedgerStore(SqliteDatabase.in_directory(tmp_path))  # the column is there once
    assert await reopened.void("acct", "h1", 30) is Voided.UNCHANGED
    await reopened.aclose()
