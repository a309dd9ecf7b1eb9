"""The ledger store in the embedded SQLite file: each operation is atomic, and committed before it
returns; the writes of one turn of the event loop share one commit (``sqlite_group_commit``).

Tables (see ``core.state.sqlite_database``): ``spent`` per account, ``holds`` (amount and
wall-clock expiry per hold id), ``closed`` (settled/released hold ids and counted event ids,
forgotten after 7 days), ``tallies``, ``charges`` (the charge log, pruned past its retention).
A hold of a killed process stays in the file with its expiry, and stops counting once that
passes, restart or not.

Why the statements look the way they do: every served request pays one ``hold`` and one
``settle`` on the event loop's thread, so each is as few statements as it can be (issue 17).
Each write is a function of the connection that ``GroupCommit`` runs in its own savepoint (or,
alone in its turn, its own transaction); one that must refuse returns ``Undo``.
A read never trusts an expired row (``expires > now``, ``forget_at > now``), so deleting
expired rows is housekeeping only: it runs once every ``SWEEP_EVERY`` writes, inside that
write's transaction, instead of on every call. Closing an id is one upsert whose row count
says whether it was already closed; a settle learns what its hold still held live from the
``DELETE ... RETURNING`` that removes it, reads the balance only when its charge is more than
that (the lease ran out, or a job's run again held it for less), and rolls both back in the rare
case that it must refuse.
"""

from __future__ import annotations

import functools
import math
import sqlite3
import struct
import time
from collections.abc import Sequence

from core.state.ledger_store import (
    CHARGE_LOG_RETENTION_S,
    CLOSED_TTL_S,
    Balance,
    HoldState,
    LoggedCharge,
    Settled,
    Tally,
    Voided,
    read_position,
)
from core.state.sqlite_database import SqliteDatabase
from core.state.sqlite_group_commit import GroupCommit, Undo

SWEEP_EVERY = 100
"""Writes (holds, settles, releases, counts) between two sweeps of expired rows."""
SWEEP_ROWS_PER_WRITE = 4
"""A sweep deletes at most ``SWEEP_EVERY * SWEEP_ROWS_PER_WRITE`` rows of each table, so it keeps
up with markers and charges expiring at up to 4 times the rate they are written (they expire at
that rate, days later), while one sweep stays short enough for the event loop."""

_HOLD_STATE = (
    "SELECT EXISTS (SELECT 1 FROM closed WHERE marker = ?1 AND forget_at > ?2), "
    "COALESCE((SELECT amount FROM holds WHERE hold_id = ?1 AND expires > ?2), 0)"
)
"""Whether the hold id is closed, and its live amount (0 when absent or expired)."""
_HOLD_STATE_AND_BALANCE = _HOLD_STATE + (
    ", COALESCE((SELECT amount FROM spent WHERE account = ?3), 0) "
    "+ (SELECT COALESCE(SUM(amount), 0) FROM holds WHERE account = ?3 AND expires > ?2)"
)
"""The same, and the account's spent + live holds (what a limit is checked against)."""
_CHARGES_SINCE = "SELECT at, entry, rowid FROM charges WHERE at >= ? ORDER BY at, rowid LIMIT ?"
_CHARGES_AFTER = (
    "SELECT at, entry, rowid FROM charges WHERE at >= ?1 AND (at > ?2 OR (at = ?2 AND rowid > ?3)) "
    "ORDER BY at, rowid LIMIT ?4"
)
"""The log in its order, (time, rowid): a position is both, so entries of one instant are told apart."""


def _position(at: float, rowid: int) -> str:
    """``<the bits of at>-<rowid>``: a non-negative double's bits, read as an integer, are in the
    order of the doubles, and give back the very float SQLite holds, so a page starts exactly
    after the last one's entry, however many entries share its time."""
    return f"{int.from_bytes(struct.pack('>d', at))}-{rowid}"


_INFINITY_BITS = int.from_bytes(struct.pack(">d", math.inf))
"""The bits of infinity: no time a charge was logged at reaches them."""


def _read_position(after: str) -> tuple[float, int] | None:
    """The time and rowid of a position; None for one past every time there is (the bits of
    infinity and above: no entry follows it)."""
    bits, rowid = read_position(after)
    if bits >= _INFINITY_BITS:
        return None
    at: float = struct.unpack(">d", bits.to_bytes(8))[0]
    return at, rowid


_BALANCE = (
    "SELECT COALESCE((SELECT amount FROM spent WHERE account = ?1), 0), "
    "(SELECT COALESCE(SUM(amount), 0) FROM holds WHERE account = ?1 AND expires > ?2)"
)
_DROP_HOLD = "DELETE FROM holds WHERE hold_id = ? RETURNING CASE WHEN expires > ? THEN amount ELSE 0 END"
"""Remove a hold as it is settled: what it held live (0 when expired), what the charge may take
without a look at the limit."""
_PUT_HOLD = (
    "INSERT INTO holds (hold_id, account, amount, expires) VALUES (?, ?, ?, ?) ON CONFLICT (hold_id) "
    "DO UPDATE SET account = excluded.account, amount = excluded.amount, expires = excluded.expires"
)
_HOLD_UNLESS_CLOSED = (
    "INSERT INTO holds (hold_id, account, amount, expires) SELECT ?1, ?2, ?3, ?4 "
    "WHERE NOT EXISTS (SELECT 1 FROM closed WHERE marker = ?1 AND forget_at > ?5) ON CONFLICT (hold_id) "
    "DO UPDATE SET account = excluded.account, expires = excluded.expires, "
    "amount = CASE WHEN expires > ?5 THEN max(amount, excluded.amount) ELSE excluded.amount END"
)
"""A hold with no limit to check, in one statement: ``_HOLD_STATE`` then ``_PUT_HOLD`` (the live
amount kept if larger), written only if the id is not closed: one row changed when held."""
_CLOSE = (
    "INSERT INTO closed (marker, forget_at, kind) VALUES (?1, ?2, ?4) "
    "ON CONFLICT (marker) DO UPDATE SET forget_at = excluded.forget_at, kind = excluded.kind WHERE forget_at <= ?3"
)
"""Close an id: one row changed when this call closed it, none when it was closed already."""
SETTLED = "settled"
"""The ``closed.kind`` of a hold a settle closed: the one kind a void takes a charge back from."""
_ADD_SPENT = (
    "INSERT INTO spent (account, amount) VALUES (?, ?) "
    "ON CONFLICT (account) DO UPDATE SET amount = amount + excluded.amount"
)
_ADD_TALLY = (
    "INSERT INTO tallies (name, field, amount) VALUES (?, ?, ?) "
    "ON CONFLICT (name, field) DO UPDATE SET amount = amount + excluded.amount"
)


def _close(db: sqlite3.Connection, marker: str, now: float, kind: str | None = None) -> bool:
    """Close ``marker`` for ``CLOSED_TTL_S``; False (and nothing written) when it already was."""
    return db.execute(_CLOSE, (marker, now + CLOSED_TTL_S, now, kind)).rowcount > 0


def _add(db: sqlite3.Connection, tallies: Sequence[Tally]) -> None:
    """Every tally in one statement (a settle's four or seven rows: ``executemany`` steps the
    statement once per row)."""
    if tallies:
        db.execute(_add_tallies(len(tallies)), [value for t in tallies for value in (t.table, t.field, t.amount)])


@functools.cache
def _add_tallies(rows: int) -> str:
    """``_ADD_TALLY`` for ``rows`` rows at once (a row repeating an earlier one's name and field
    adds to it, as a second statement would)."""
    values = ", ".join(["(?, ?, ?)"] * rows)
    return _ADD_TALLY.replace("VALUES (?, ?, ?)", f"VALUES {values}")


class SqliteLedgerStore:
    def __init__(self, database: SqliteDatabase, *, charge_log_retention_s: float = CHARGE_LOG_RETENTION_S,
                 sweep_every: int = SWEEP_EVERY) -> None:
        self.database = database
        self._writes = GroupCommit(database)
        self._retention_s = charge_log_retention_s
        self._sweep_every = sweep_every
        self._writes_before_sweep = 0
        """The first write sweeps (what piled up while no process ran), then every ``sweep_every``."""

    def _wrote(self, db: sqlite3.Connection, now: float) -> None:
        """Count one write, and sweep expired rows when their turn comes, in the write's transaction."""
        if self._writes_before_sweep > 0:
            self._writes_before_sweep -= 1
            return
        self._writes_before_sweep = self._sweep_every - 1
        rows = self._sweep_every * SWEEP_ROWS_PER_WRITE
        db.execute("DELETE FROM holds WHERE expires <= ?", (now,))
        db.execute("DELETE FROM closed WHERE marker IN (SELECT marker FROM closed WHERE forget_at <= ? LIMIT ?)",
                   (now, rows))
        db.execute("DELETE FROM charges WHERE rowid IN (SELECT rowid FROM charges WHERE at < ? LIMIT ?)",
                   (now - self._retention_s, rows))

    async def hold(self, account: str, hold_id: str, amount: int, *, limit: int | None, lease_s: float) -> bool:
        now = time.time()

        def work(db: sqlite3.Connection) -> bool:
            if limit is None:
                held = db.execute(_HOLD_UNLESS_CLOSED, (hold_id, account, amount, now + lease_s, now)).rowcount > 0
                if held:
                    self._wrote(db, now)
                return held
            closed, current, committed = db.execute(_HOLD_STATE_AND_BALANCE, (hold_id, now, account)).fetchone()
            if closed:
                return False
            wanted = max(current, amount)
            if wanted > current and committed - current + wanted > limit:
                return False
            db.execute(_PUT_HOLD, (hold_id, account, wanted, now + lease_s))
            self._wrote(db, now)
            return True

        return await self._writes.write(work)

    async def settle(
        self, account: str, hold_id: str, charge: int, *, limit: int | None, tallies: Sequence[Tally] = (),
        entry: bytes = b"",
    ) -> Settled:
        now = time.time()

        def work(db: sqlite3.Connection) -> Settled | Undo[Settled]:
            if not _close(db, hold_id, now, SETTLED):  # closed before: by a settle, or without a charge
                kind = db.execute("SELECT kind FROM closed WHERE marker = ?", (hold_id,)).fetchone()
                return Settled.ALREADY_SETTLED if kind and kind[0] == SETTLED else Settled.ALREADY_RELEASED
            held_live = db.execute(_DROP_HOLD, (hold_id, now)).fetchall()
            if limit is not None and charge > (held_live[0][0] if held_live else 0):
                spent, held = db.execute(_BALANCE, (account, now)).fetchone()
                if spent + held + charge > limit:
                    return Undo(Settled.REFUSED)  # the close and the delete undone: a refusal changes nothing
            db.execute(_ADD_SPENT, (account, charge))
            _add(db, tallies)
            if entry:
                db.execute("INSERT INTO charges (at, entry) VALUES (?, ?)", (now, entry))
            self._wrote(db, now)
            return Settled.CHARGED

        return await self._writes.write(work)

    async def void(
        self, account: str, hold_id: str, refund: int, *, tallies: Sequence[Tally] = (), entry: bytes = b"",
    ) -> Voided:
        now = time.time()

        def work(db: sqlite3.Connection) -> Voided:
            if _close(db, hold_id, now):
                db.execute("DELETE FROM holds WHERE hold_id = ?", (hold_id,))
                self._wrote(db, now)
                return Voided.RELEASED
            taken_back = db.execute("UPDATE closed SET kind = NULL WHERE marker = ? AND kind = ?", (hold_id, SETTLED))
            if taken_back.rowcount == 0:
                return Voided.UNCHANGED
            db.execute(_ADD_SPENT, (account, -refund))
            _add(db, tallies)
            if entry:
                db.execute("INSERT INTO charges (at, entry) VALUES (?, ?)", (now, entry))
            self._wrote(db, now)
            return Voided.REFUNDED

        return await self._writes.write(work)

    async def hold_state(self, account: str, hold_id: str) -> HoldState:
        with self.database.reading() as db:
            row = db.execute("SELECT kind FROM closed WHERE marker = ? AND forget_at > ?",
                             (hold_id, time.time())).fetchone()
        if row is None:
            return HoldState.OPEN
        return HoldState.SETTLED if row[0] == SETTLED else HoldState.RELEASED

    async def charges(self, since: float, limit: int = 10_000, *, after: str | None = None) -> list[LoggedCharge]:
        with self.database.reading() as db:
            if after is None:
                rows = db.execute(_CHARGES_SINCE, (since, limit)).fetchall()
            elif (start := _read_position(after)) is None:
                rows = []  # a position past every time there is
            else:
                at, rowid = start
                rows = db.execute(_CHARGES_AFTER, (max(since, at), at, rowid, limit)).fetchall()
        return [LoggedCharge(float(at), bytes(entry), _position(float(at), rowid)) for at, entry, rowid in rows]

    async def release(self, account: str, hold_id: str) -> bool:
        now = time.time()

        def work(db: sqlite3.Connection) -> bool:
            if not _close(db, hold_id, now):
                return False
            db.execute("DELETE FROM holds WHERE hold_id = ?", (hold_id,))
            self._wrote(db, now)
            return True

        return await self._writes.write(work)

    async def balance(self, account: str) -> Balance:
        now = time.time()
        with self.database.reading() as db:
            spent, held = db.execute(_BALANCE, (account, now)).fetchone()
        return Balance(int(spent), int(held))

    async def count(self, event_id: str, tallies: Sequence[Tally]) -> bool:
        now = time.time()

        def work(db: sqlite3.Connection) -> bool:
            if not _close(db, event_id, now):
                return False
            _add(db, tallies)
            self._wrote(db, now)
            return True

        return await self._writes.write(work)

    async def table(self, name: str) -> dict[str, int]:
        with self.database.reading() as db:
            rows = db.execute("SELECT field, amount FROM tallies WHERE name = ?", (name,)).fetchall()
        return {field: int(amount) for field, amount in rows}

    async def aclose(self) -> None:
        self.database.close()
