"""The embedded durable store's file: one SQLite database (standard library) under the data dir.

Why SQLite: it ships with Python, a transaction is atomic and survives a killed process, and
``BEGIN IMMEDIATE`` serialises writers even if two processes open the same file. Settings:

- ``journal_mode=WAL``: readers never block the writer;
- ``synchronous=NORMAL``: a commit is in the WAL (the OS page cache) before it returns, so a
  killed or crashed *process* loses nothing; a power cut or OS crash can lose the commits since
  the last checkpoint (each is fsynced), which the leases of reservations bound for money held;
- ``busy_timeout``: a writer waits this long for another process's lock, then the operation
  fails as ``StateUnavailable`` (503), never a 500.
- the store's lock file (``core.state.store_lock``) shared for as long as the database is open,
  taken before its name is: a ``state restore`` in progress is waited for, and never runs under it.

Calls are synchronous and short (micro- to milliseconds), made straight from the event loop: one
connection, no thread hop, and each store method is one transaction with no ``await`` inside,
hence atomic within the process too. Checkpoints (copying the WAL into the main file, fsyncs
included) are the exception: they run on a thread of their own, ``sqlite_checkpointer``, with
this connection's ``wal_autocheckpoint`` off, so that no commit on the loop runs one.

The money tables keyed by text (``spent``, ``holds``, ``closed``, ``tallies``) are ``WITHOUT
ROWID``: a row lives in its primary key's b-tree alone, so a write dirties one page fewer per
table, and each dirty page is one WAL frame written at commit (issue 17: a served request writes
about a quarter fewer frames). A file made before keeps its rowid tables: every statement reads
and writes both layouts the same way.
"""

from __future__ import annotations

import sqlite3
import weakref
from pathlib import Path
from types import TracebackType

from core.errors import StateUnavailable
from core.state.sqlite_checkpointer import CHECKPOINT_INTERVAL_S, RESTART_FRAMES, WalCheckpointer
from core.state.store_lock import OPEN_WAIT_S, share

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, kind TEXT NOT NULL, value BLOB, expires REAL);
CREATE INDEX IF NOT EXISTS entries_expiry ON entries (expires) WHERE expires IS NOT NULL;
CREATE TABLE IF NOT EXISTS hash_fields (key TEXT NOT NULL, field TEXT NOT NULL, amount INTEGER NOT NULL,
                                        PRIMARY KEY (key, field));
CREATE TABLE IF NOT EXISTS leases (key TEXT NOT NULL, holder TEXT NOT NULL, ends REAL NOT NULL,
                                   PRIMARY KEY (key, holder));
CREATE TABLE IF NOT EXISTS spent (account TEXT PRIMARY KEY, amount INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS holds (hold_id TEXT PRIMARY KEY, account TEXT NOT NULL, amount INTEGER NOT NULL,
                                  expires REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS holds_by_account ON holds (account, expires);
CREATE TABLE IF NOT EXISTS closed (marker TEXT PRIMARY KEY, forget_at REAL NOT NULL, kind TEXT) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS closed_expiry ON closed (forget_at);
CREATE TABLE IF NOT EXISTS charges (at REAL NOT NULL, entry BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS charges_by_time ON charges (at);
CREATE TABLE IF NOT EXISTS tallies (name TEXT NOT NULL, field TEXT NOT NULL, amount INTEGER NOT NULL,
                                    PRIMARY KEY (name, field)) WITHOUT ROWID;
"""

DATABASE_NAME = "boltgate.sqlite3"
OLDEST_SQLITE = (3, 35, 0)
"""The stores' statements use ``RETURNING`` (SQLite 3.35, 2021); Debian 12's is 3.40."""


class SqliteDatabase:
    """One connection to the file, shared by the state store and the ledger store built on it."""

    def __init__(self, path: Path, *, busy_timeout_s: float = 2.0, checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S,
                 checkpoint_restart_frames: int = RESTART_FRAMES, restore_wait_s: float = OPEN_WAIT_S) -> None:
        """``restore_wait_s``: how long to wait for a ``state restore`` in progress (``store_lock``)."""
        if sqlite3.sqlite_version_info < OLDEST_SQLITE:
            raise RuntimeError(f"The SQLite state backend needs SQLite {'.'.join(map(str, OLDEST_SQLITE))} or later; "
                               f"this Python links {sqlite3.sqlite_version} (set state_backend to redis or memory)")
        self.path = path
        self._lock = share(path, wait_s=restore_wait_s)  # before the name is opened: see core.state.store_lock
        try:
            self._connection: sqlite3.Connection | None = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_s
            )
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=NORMAL")
            self._connection.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer's thread does them
            self._connection.executescript(SCHEMA)
            _add_missing_columns(self._connection)
        except BaseException:
            self._lock.release()
            raise
        self._transaction = Transaction(self)
        self._reading = Reading(self)
        self.checkpointer = WalCheckpointer(path, interval_s=checkpoint_interval_s,
                                            restart_frames=checkpoint_restart_frames)
        # A database dropped unclosed (a test's) stops its thread too; the thread holds no reference to it.
        weakref.finalize(self, self.checkpointer.stop, wait=False)

    @classmethod
    def in_directory(cls, data_dir: Path, *, busy_timeout_s: float = 2.0) -> SqliteDatabase:
        return cls(data_dir / DATABASE_NAME, busy_timeout_s=busy_timeout_s)

    @property
    def connection(self) -> sqlite3.Connection:
        if self._connection is None:
            raise StateUnavailable("The state database is closed")
        return self._connection

    def transaction(self) -> Transaction:
        """One write transaction (``with database.transaction() as db:``), committed at the end or
        rolled back on any error."""
        return self._transaction

    def reading(self) -> Reading:
        """Reads (``with database.reading() as db:``); a failure is ``StateUnavailable``."""
        return self._reading

    def close(self) -> None:
        """Stops the checkpointer (joined, bounded), then closes the connection: the last
        connection to the file to close checkpoints the WAL whole and deletes it."""
        self.checkpointer.stop()
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._lock.release()


ADDED_COLUMNS = {"closed": {"kind": "TEXT"}}
"""Columns added after files were first made: a file without one gets it when opened (its rows
read NULL there). ``closed.kind`` says what closed a hold id ("settled" is what a void takes back)."""


def _add_missing_columns(connection: sqlite3.Connection) -> None:
    for table, columns in ADDED_COLUMNS.items():
        present = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
        for name, declared in columns.items():
            if name not in present:
                try:
                    connection.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declared}")
                except sqlite3.OperationalError as exc:  # another process opening the file added it first
                    if "duplicate column" not in str(exc):
                        raise


class Transaction:
    """The context manager of ``SqliteDatabase.transaction``: ``BEGIN IMMEDIATE`` on entry, then
    ``COMMIT``, or ``ROLLBACK`` when the block raised. (A write that must undo itself and still
    answer returns ``Undo``: ``sqlite_group_commit``.)

    A class, one per database and reused, rather than a ``contextlib.contextmanager`` generator
    built on every call: it runs twice per served request (issue 17). Holding no state between
    entry and exit is what lets one instance serve every transaction: they never overlap, since
    none awaits inside.
    """

    __slots__ = ("_database",)

    def __init__(self, database: SqliteDatabase) -> None:
        self._database = database

    def __enter__(self) -> sqlite3.Connection:
        connection = self._database.connection
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StateUnavailable(f"The state database is busy or unwritable: {exc}") from exc
        return connection

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        connection = self._database.connection
        if error is not None:
            if connection.in_transaction:  # SQLite ends it itself on some errors (a full disk)
                connection.execute("ROLLBACK")
            if isinstance(error, sqlite3.OperationalError):
                raise StateUnavailable(f"The state database could not be written: {error}") from error
            return
        if not connection.in_transaction:  # the block rolled back all it did (``Undo``)
            return
        try:
            connection.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            connection.execute("ROLLBACK")
            raise StateUnavailable(f"The state database could not commit: {exc}") from exc


class Reading:
    """The context manager of ``SqliteDatabase.reading``: the connection, and any SQLite failure
    inside the block turned into ``StateUnavailable`` (a class for the reason ``Transaction`` is)."""

    __slots__ = ("_database",)

    def __init__(self, database: SqliteDatabase) -> None:
        self._database = database

    def __enter__(self) -> sqlite3.Connection:
        return self._database.connection

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if isinstance(error, sqlite3.OperationalError):
            raise StateUnavailable(f"The state database could not be read: {error}") from error
