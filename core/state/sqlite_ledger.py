"""The ledger store in the embedded SQLite file: each operation is one transaction.

Tables (see ``core.state.sqlite_database``): ``spent`` per account, ``holds`` (amount and
wall-clock expiry per hold id), ``closed`` (settled/released hold ids and counted event ids,
forgotten after 7 days), ``tallies``, ``charges`` (the charge log, pruned past its retention).
A hold of a killed process stays in the file with its expiry, and stops counting once that
passes, restart or not.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from core.state.ledger_store import CHARGE_LOG_RETENTION_S, CLOSED_TTL_S, Balance, LoggedCharge, Settled, Tally
from core.state.sqlite_database import SqliteDatabase


def _spent(db: sqlite3.Connection, account: str) -> int:
    row = db.execute("SELECT amount FROM spent WHERE account = ?", (account,)).fetchone()
    return 0 if row is None else int(row[0])


def _held(db: sqlite3.Connection, account: str, now: float) -> int:
    row = db.execute("SELECT COALESCE(SUM(amount), 0) FROM holds WHERE account = ? AND expires > ?",
                     (account, now)).fetchone()
    return int(row[0])


def _is_closed(db: sqlite3.Connection, marker: str, now: float) -> bool:
    return db.execute("SELECT 1 FROM closed WHERE marker = ? AND forget_at > ?", (marker, now)).fetchone() is not None


def _close(db: sqlite3.Connection, marker: str, now: float) -> None:
    db.execute("DELETE FROM closed WHERE marker IN (SELECT marker FROM closed WHERE forget_at <= ? LIMIT 100)", (now,))
    db.execute("INSERT OR REPLACE INTO closed (marker, forget_at) VALUES (?, ?)", (marker, now + CLOSED_TTL_S))


def _add(db: sqlite3.Connection, tallies: Sequence[Tally]) -> None:
    db.executemany(
        "INSERT INTO tallies (name, field, amount) VALUES (?, ?, ?) "
        "ON CONFLICT (name, field) DO UPDATE SET amount = amount + excluded.amount",
        [(t.table, t.field, t.amount) for t in tallies],
    )


class SqliteLedgerStore:
    def __init__(self, database: SqliteDatabase, *, charge_log_retention_s: float = CHARGE_LOG_RETENTION_S) -> None:
        self.database = database
        self._retention_s = charge_log_retention_s

    async def hold(self, account: str, hold_id: str, amount: int, *, limit: int | None, lease_s: float) -> bool:
        now = time.time()
        with self.database.transaction() as db:
            db.execute("DELETE FROM holds WHERE account = ? AND expires <= ?", (account, now))
            if _is_closed(db, hold_id, now):
                return False
            row = db.execute("SELECT amount FROM holds WHERE hold_id = ?", (hold_id,)).fetchone()
            current = 0 if row is None else int(row[0])
            wanted = max(current, amount)
            if (limit is not None and wanted > current
                    and _spent(db, account) + _held(db, account, now) - current + wanted > limit):
                return False
            db.execute("INSERT OR REPLACE INTO holds (hold_id, account, amount, expires) VALUES (?, ?, ?, ?)",
                       (hold_id, account, wanted, now + lease_s))
        return True

    async def settle(
        self, account: str, hold_id: str, charge: int, *, limit: int | None, tallies: Sequence[Tally] = (),
        entry: bytes = b"",
    ) -> Settled:
        now = time.time()
        with self.database.transaction() as db:
            if _is_closed(db, hold_id, now):
                return Settled.ALREADY_CLOSED
            live = db.execute("SELECT 1 FROM holds WHERE hold_id = ? AND expires > ?", (hold_id, now)).fetchone()
            if live is None and limit is not None and _spent(db, account) + _held(db, account, now) + charge > limit:
                return Settled.REFUSED
            db.execute("DELETE FROM holds WHERE hold_id = ?", (hold_id,))
            _close(db, hold_id, now)
            db.execute("INSERT INTO spent (account, amount) VALUES (?, ?) "
                       "ON CONFLICT (account) DO UPDATE SET amount = amount + excluded.amount", (account, charge))
            _add(db, tallies)
            if entry:
                db.execute("DELETE FROM charges WHERE rowid IN (SELECT rowid FROM charges WHERE at < ? LIMIT 100)",
                           (now - self._retention_s,))
                db.execute("INSERT INTO charges (at, entry) VALUES (?, ?)", (now, entry))
        return Settled.CHARGED

    async def charges(self, since: float, limit: int = 10_000) -> list[LoggedCharge]:
        with self.database.reading() as db:
            rows = db.execute("SELECT at, entry FROM charges WHERE at >= ? ORDER BY at, rowid LIMIT ?",
                              (since, limit)).fetchall()
        return [LoggedCharge(float(at), bytes(entry)) for at, entry in rows]

    async def release(self, account: str, hold_id: str) -> bool:
        now = time.time()
        with self.database.transaction() as db:
            if _is_closed(db, hold_id, now):
                return False
            db.execute("DELETE FROM holds WHERE hold_id = ?", (hold_id,))
            _close(db, hold_id, now)
        return True

    async def balance(self, account: str) -> Balance:
        now = time.time()
        with self.database.reading() as db:
            return Balance(_spent(db, account), _held(db, account, now))

    async def count(self, event_id: str, tallies: Sequence[Tally]) -> bool:
        now = time.time()
        with self.database.transaction() as db:
            if _is_closed(db, event_id, now):
                return False
            _close(db, event_id, now)
            _add(db, tallies)
        return True

    async def table(self, name: str) -> dict[str, int]:
        with self.database.reading() as db:
            rows = db.execute("SELECT field, amount FROM tallies WHERE name = ?", (name,)).fetchall()
        return {field: int(amount) for field, amount in rows}

    async def aclose(self) -> None:
        self.database.close()
