"""The ``StateStore`` in a SQLite file: what one process keeps across restarts (keys, revocations,
idempotency records) when it runs without Redis.

A key is one row of ``entries`` (``kind`` ``value`` or ``hash``, an optional wall-clock expiry);
a hash's fields are rows of ``hash_fields``; a lease is a row of ``leases`` with its end. An
expired row counts as absent at once and is deleted by the next write to it or by the purge that
runs every ``PURGE_EVERY`` writes. Expiry is wall-clock time, since it must keep its meaning
across a restart.
"""

from __future__ import annotations

import sqlite3
import time

from core.state.sqlite_database import SqliteDatabase

PURGE_EVERY = 500
"""Writes between two sweeps of expired keys (reads already ignore them)."""


class SqliteStateStore:
    def __init__(self, database: SqliteDatabase) -> None:
        self.database = database
        self._writes = 0

    def _row(self, db: sqlite3.Connection, key: str) -> tuple[str, bytes | None, float | None] | None:
        """The live row of ``key`` (kind, value, expires), or None; an expired row is deleted."""
        row = db.execute("SELECT kind, value, expires FROM entries WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        if row[2] is not None and row[2] <= time.time():
            if db.in_transaction:
                self._remove(db, key)
            return None
        return row[0], row[1], row[2]

    @staticmethod
    def _remove(db: sqlite3.Connection, key: str) -> None:
        db.execute("DELETE FROM entries WHERE key = ?", (key,))
        db.execute("DELETE FROM hash_fields WHERE key = ?", (key,))

    def _wrote(self, db: sqlite3.Connection) -> None:
        self._writes += 1
        if self._writes % PURGE_EVERY == 0:
            now = time.time()
            db.execute("DELETE FROM hash_fields WHERE key IN (SELECT key FROM entries WHERE expires <= ?)", (now,))
            db.execute("DELETE FROM entries WHERE expires <= ?", (now,))
            db.execute("DELETE FROM leases WHERE ends <= ?", (now,))

    def _put(self, db: sqlite3.Connection, key: str, value: bytes, expires: float | None) -> None:
        self._remove(db, key)
        db.execute("INSERT INTO entries (key, kind, value, expires) VALUES (?, 'value', ?, ?)", (key, value, expires))
        self._wrote(db)

    @staticmethod
    def _number(row: tuple[str, bytes | None, float | None] | None, key: str) -> int:
        if row is None:
            return 0
        if row[0] == "hash":
            raise TypeError(f"{key} holds a hash")
        return int(row[1] or b"0")

    async def get(self, key: str) -> bytes | None:
        with self.database.reading() as db:
            row = self._row(db, key)
        if row is None:
            return None
        if row[0] == "hash":
            raise TypeError(f"{key} holds a hash")
        return row[1]

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        with self.database.transaction() as db:
            self._put(db, key, value, None if ttl is None else time.time() + ttl)

    async def set_if_absent(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        with self.database.transaction() as db:
            if self._row(db, key) is not None:
                return False
            self._put(db, key, value, None if ttl is None else time.time() + ttl)
        return True

    async def delete(self, key: str) -> None:
        # A key that is not there needs no write transaction (the breaker clears its failure count
        # after every success, issue 17): absent at this read is a valid order of the two. A hash's
        # fields never outlive its row in ``entries``, so that row alone says whether there is a key.
        with self.database.reading() as db:
            if db.execute("SELECT 1 FROM entries WHERE key = ?", (key,)).fetchone() is None:
                return
        with self.database.transaction() as db:
            self._remove(db, key)

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        with self.database.transaction() as db:
            row = self._row(db, key)
            value = self._number(row, key) + amount
            created_expiry = None if ttl is None else time.time() + ttl
            self._put(db, key, str(value).encode(), created_expiry if row is None else row[2])
        return value

    async def incr_within(self, key: str, amount: int, limit: int, ttl: float | None = None) -> int | None:
        with self.database.transaction() as db:
            row = self._row(db, key)
            value = self._number(row, key) + amount
            if value > limit:
                return None
            created_expiry = None if ttl is None else time.time() + ttl
            self._put(db, key, str(value).encode(), created_expiry if row is None else row[2])
        return value

    async def acquire_lease(self, key: str, holder: str, limit: int, ttl: float) -> int | None:
        now = time.time()
        with self.database.transaction() as db:
            db.execute("DELETE FROM leases WHERE key = ? AND ends <= ?", (key, now))
            held = db.execute("SELECT COUNT(*), SUM(holder = ?) FROM leases WHERE key = ?", (holder, key)).fetchone()
            if not held[1] and held[0] >= limit:
                return None
            db.execute(
                "INSERT INTO leases (key, holder, ends) VALUES (?, ?, ?) "
                "ON CONFLICT (key, holder) DO UPDATE SET ends = excluded.ends",
                (key, holder, now + ttl),
            )
            count = db.execute("SELECT COUNT(*) FROM leases WHERE key = ?", (key,)).fetchone()
        return int(count[0])

    async def release_lease(self, key: str, holder: str) -> None:
        with self.database.transaction() as db:
            db.execute("DELETE FROM leases WHERE key = ? AND holder = ?", (key, holder))

    async def hincr(self, key: str, field: str, amount: int, ttl: float | None = None) -> int:
        with self.database.transaction() as db:
            row = self._row(db, key)
            if row is None:
                self._remove(db, key)
                expires = None if ttl is None else time.time() + ttl
                db.execute("INSERT INTO entries (key, kind, expires) VALUES (?, 'hash', ?)", (key, expires))
            elif row[0] != "hash":
                raise TypeError(f"{key} does not hold a hash")
            found = db.execute(
                "INSERT INTO hash_fields (key, field, amount) VALUES (?, ?, ?) "
                "ON CONFLICT (key, field) DO UPDATE SET amount = amount + excluded.amount RETURNING amount",
                (key, field, amount),
            ).fetchall()
            self._wrote(db)
        return int(found[0][0])

    async def hdel(self, key: str, field: str) -> None:
        with self.database.transaction() as db:
            row = self._row(db, key)
            if row is None:
                return
            if row[0] != "hash":
                raise TypeError(f"{key} does not hold a hash")
            db.execute("DELETE FROM hash_fields WHERE key = ? AND field = ?", (key, field))
            if db.execute("SELECT 1 FROM hash_fields WHERE key = ? LIMIT 1", (key,)).fetchone() is None:
                self._remove(db, key)

    async def hgetall(self, key: str) -> dict[str, int]:
        with self.database.reading() as db:
            row = self._row(db, key)
            if row is None:
                return {}
            if row[0] != "hash":
                raise TypeError(f"{key} does not hold a hash")
            fields = db.execute("SELECT field, amount FROM hash_fields WHERE key = ?", (key,)).fetchall()
        return {field: int(amount) for field, amount in fields}

    async def ttl(self, key: str) -> float | None:
        with self.database.reading() as db:
            row = self._row(db, key)
        if row is None or row[2] is None:
            return None
        return max(0.0, row[2] - time.time())

    async def aclose(self) -> None:
        self.database.close()
