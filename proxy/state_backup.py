"""``boltgate state backup DEST``: a consistent copy of the embedded store while the gateway runs.

The SQLite file holds the money (what each key spent, the charge log an invoice is checked
against, holds, idempotency records) and the admin-created keys. Copying it with ``cp`` while the
gateway writes is not a backup: the file and its write-ahead log change under the copy, and a
copy of the file without its log lacks the latest commits. SQLite's online backup copies every
page inside one read transaction, so the copy is the database as of one commit, whatever the
workers write meanwhile (WAL: readers never block writers, and the backup holds no write lock).

The copy is written beside ``DEST`` and renamed onto it only once complete, checked
(``PRAGMA integrity_check``) and made one self-contained file (rollback journal, no ``-wal`` to
carry along), so a ``DEST`` that exists is always a whole backup.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.state.sqlite_database import DATABASE_NAME
from proxy.settings import Settings


@dataclass(frozen=True)
class Backup:
    path: Path
    bytes: int
    charges: int
    """Charges in the copied log (kept ``charge_log_retention_days``)."""


def database_path(settings: Settings) -> Path:
    """The embedded store's file; ``ValueError`` (saying why and what to do) for a store that is
    not a file here, as for any backup that cannot be made as asked."""
    if settings.state_backend == "redis":
        raise ValueError("the state is in Redis: back up Redis itself (its AOF or RDB files; the Helm "
                         "chart's Redis keeps an AOF on its volume)")
    if settings.state_backend == "memory":
        raise ValueError("state_backend is memory: nothing is kept to back up")
    path = settings.data_dir / DATABASE_NAME
    if not path.is_file():
        raise ValueError(f"no embedded store at {path} (is data_dir {settings.data_dir} the gateway's?)")
    return path


def back_up(source: Path, dest: Path, *, overwrite: bool = False, busy_timeout_s: float = 10.0) -> Backup:
    """Copy the database at ``source`` to ``dest`` as of one commit (see the module docstring)."""
    if dest.exists() and not overwrite:
        raise ValueError(f"{dest} exists (use --force to replace it)")
    if dest.resolve() == source.resolve():
        raise ValueError(f"{dest} is the store itself")
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        with checked_copy(source, partial, busy_timeout_s=busy_timeout_s) as copy:
            (charges,) = copy.execute("SELECT count(*) FROM charges").fetchone()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, dest)
    fsync_directory(dest.parent)  # the new name on disk too
    return Backup(path=dest, bytes=dest.stat().st_size, charges=charges)


@contextmanager
def checked_copy(source: Path, copy_path: Path, *, busy_timeout_s: float = 10.0) -> Iterator[sqlite3.Connection]:
    """The database at ``source`` copied to ``copy_path`` as of one commit (SQLite's online
    backup: every page in one step, one read transaction), made one self-contained file (rollback
    journal: no write-ahead log to carry along, and a gateway opening it switches it to WAL) and
    integrity-checked (``ValueError`` when it fails); the copy is open for the block, and fsynced
    once the block ends well. What ``state backup`` writes and ``state restore`` stages."""
    live = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=busy_timeout_s)
    try:
        copy = sqlite3.connect(copy_path)
        try:
            live.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")
            problems = [row[0] for row in copy.execute("PRAGMA integrity_check")]
            if problems != ["ok"]:
                raise ValueError(f"the copy of {source} failed its integrity check: {'; '.join(problems[:5])}")
            yield copy
        finally:
            copy.close()
    finally:
        live.close()
    with open(copy_path, "rb") as written:
        os.fsync(written.fileno())  # on disk before it takes the store's or the backup's name


def fsync_directory(directory: Path) -> None:
    """A rename (or link) in ``directory`` made durable."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
