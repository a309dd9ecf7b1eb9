"""``boltgate state restore SOURCE``: a backup made by ``state backup`` becomes the embedded store.

Done by hand, a restore is three steps that each go wrong quietly: a gateway still running keeps
writing to the file it has open (the replaced one, or worse, the new one through an old
write-ahead log); a ``boltgate.sqlite3-wal`` left beside the new file is replayed onto it by the
next opener (SQLite opens a database in WAL mode whenever that file exists, whatever the database
says), which corrupts it; and a ``cp`` over the live file leaves a half-written store if it is
interrupted. Here:

1. Before anything, the store's lock file is locked exclusively (``core.state.store_lock``):
   every process that opens the store shares that lock while it has it open, so the restore is
   refused at once while any does, and a gateway started during the restore waits for its end
   and then opens the restored file (SQLite's own locks, below, are on the old file's inode: a
   process that opened the name before the rename would go on with the replaced file).
2. The source is copied into ``data_dir`` under a temporary name with SQLite's online backup, then
   checked there: a SQLite database (a file of another kind fails the copy), ``PRAGMA
   integrity_check`` ok, and the tables holding the keys and the money present. A source that
   fails is refused, and the live file is not opened.
3. The live file is locked exclusively (``locking_mode=EXCLUSIVE``, ``BEGIN EXCLUSIVE``, a short
   busy timeout). Every connection to a WAL database holds a shared lock on it for as long as it
   is open, idle or not, so the lock is refused while any gateway worker (or another ``boltgate``
   command) has the store open, even one older than the lock file: the restore is refused,
   nothing written. The lock is taken twice: first to fold the old write-ahead log into the old
   file (a gateway killed outright leaves its latest commits there) and delete it, then, that
   connection closed with its journal, to hold the file with no log or journal open, so that
   nothing SQLite deletes by name at a close can be the new file's.
4. Under that lock the stale ``-shm`` is removed, the copy given the old file's owner and mode
   (a restore run as root leaves a store the gateway's user can still write), the old file kept
   under a second name (a hard link: ``boltgate.sqlite3.before-restore-<UTC time>``) unless told
   not to, and the checked copy, fsynced, renamed onto ``boltgate.sqlite3``, the directory
   fsynced: the name always means a whole database, the old one or the restored one.

Images are not in a backup (``state backup`` copies the SQLite file only) and a restore leaves the
image directory as it is: see ``IMAGES_NOTE``.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from core.errors import BackupRefused, StoreInUse
from core.state.sqlite_database import DATABASE_NAME
from core.state.store_lock import hold_exclusively
from proxy.settings import Settings
from proxy.state_backup import checked_copy, fsync_directory

SQLITE_HEADER = b"SQLite format 3\x00"
RESTORED_TABLES = ("entries", "hash_fields", "spent", "holds", "closed", "charges")
"""The tables a backup must have: keys and revocations (``entries``, ``hash_fields``), spend,
holds, settled holds and the charge log. The others (breakers' ``leases``, ``tallies``) are made
empty when a gateway opens a file without them."""
COMPANIONS = ("-wal", "-shm", "-journal")
"""The files SQLite keeps beside a database; each, left beside another database, is read as its."""
KEPT_SUFFIX = ".before-restore-"
IMAGES_NOTE = ("images are not in a backup: the image directory is left as it is. Images made since the backup "
               "stay downloadable until they expire (image_ttl_s); those the backup's jobs name and that have "
               "expired or been removed answer 404")


@dataclass(frozen=True)
class Restore:
    path: Path
    bytes: int
    charges: int
    """Charges in the restored log."""
    keys: int
    """Keys created at run time (or revoked) in the restored store."""
    kept: Path | None
    """Where the replaced store was kept, or None (there was none, or it was not kept)."""


def store_file(settings: Settings) -> Path:
    """Where the embedded store's file is (it may not exist yet); ``ValueError`` for a
    store that is not a file here. Every refusal is a ``ValueError`` saying why, raised before
    the live store is changed, as ``state backup``'s are."""
    if settings.state_backend == "redis":
        raise ValueError("the state is in Redis: restore Redis itself (from its AOF or RDB files)")
    if settings.state_backend == "memory":
        raise ValueError("state_backend is memory: there is no store to restore into (set state_backend to "
                             "sqlite and data_dir to the gateway's)")
    return settings.data_dir / DATABASE_NAME


def restore(source: Path, live: Path, *, keep_replaced: bool = True, busy_timeout_s: float = 1.0) -> Restore:
    """Make the backup at ``source`` the store at ``live`` (see the module docstring)."""
    _refuse_unreadable(source, live)
    lock = hold_exclusively(live)  # no process has the store open, and none opens it until the end
    staged = live.with_name(f".{live.name}.restoring-{os.getpid()}")
    try:
        charges, keys = _stage(source, staged)
        if live.exists():
            kept = _swap(staged, live, keep_replaced=keep_replaced, busy_timeout_s=busy_timeout_s)
        else:
            _place(staged, live)
            kept = None
    finally:
        for path in (staged, *(Path(f"{staged}{suffix}") for suffix in COMPANIONS)):
            path.unlink(missing_ok=True)
        lock.release()
    return Restore(path=live, bytes=live.stat().st_size, charges=charges, keys=keys, kept=kept)


def _refuse_unreadable(source: Path, live: Path) -> None:
    if not source.is_file():
        raise BackupRefused(f"{source} is not a file")
    if live.exists() and source.samefile(live):
        raise BackupRefused(f"{source} is the store itself")
    with open(source, "rb") as file:
        if file.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            raise BackupRefused(f"{source} is not a SQLite database (a backup made by boltgate state backup is one)")


def _stage(source: Path, staged: Path) -> tuple[int, int]:
    """Copy ``source`` to ``staged`` as one self-contained file, check it, fsync it; the charges
    and keys it holds."""
    staged.unlink(missing_ok=True)
    try:
        with checked_copy(source, staged) as copy:
            tables = {row[0] for row in copy.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
            missing = [table for table in RESTORED_TABLES if table not in tables]
            if missing:
                raise BackupRefused(f"{source} is not a boltgate store: it has no {', '.join(missing)} table")
            (charges,) = copy.execute("SELECT count(*) FROM charges").fetchone()
            (keys,) = copy.execute("SELECT count(*) FROM hash_fields WHERE key = 'apikey:index'").fetchone()
    except sqlite3.DatabaseError as error:  # "file is not a database", a page that cannot be read
        raise BackupRefused(f"{source} cannot be read as a SQLite database: {error}") from error
    except ValueError as error:  # the copy failed its integrity check
        raise BackupRefused(str(error)) from error
    return int(charges), int(keys)


def _swap(staged: Path, live: Path, *, keep_replaced: bool, busy_timeout_s: float) -> Path | None:
    with _exclusively(live, busy_timeout_s, fold_log=True):
        pass  # the old log folded into the old file and deleted, with the journal of doing so
    with _exclusively(live, busy_timeout_s, fold_log=False):
        if Path(f"{live}-wal").exists() or Path(f"{live}-journal").exists():  # made since by a process that died
            raise ValueError(f"{live} has a write-ahead log or journal beside it again: was a gateway started? "
                                 "Stop every gateway on data_dir, then restore")
        Path(f"{live}-shm").unlink(missing_ok=True)  # stale: no connection is open to use it
        _same_owner_and_mode(staged, live)
        kept = None
        if keep_replaced:
            kept = live.with_name(f"{live.name}{KEPT_SUFFIX}{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
            os.link(live, kept)  # the old file, whole (its log folded in), under a second name
        os.replace(staged, live)
        fsync_directory(live.parent)
    return kept


@contextmanager
def _exclusively(live: Path, busy_timeout_s: float, *, fold_log: bool) -> Iterator[None]:
    """The database at ``live`` locked exclusively for the block (``ValueError`` while a
    process has it open); with ``fold_log``, its write-ahead log checkpointed into it and deleted."""
    connection = sqlite3.connect(live, timeout=busy_timeout_s, isolation_level=None)
    try:
        connection.execute("PRAGMA locking_mode=EXCLUSIVE")
        try:
            connection.execute("BEGIN EXCLUSIVE")
            connection.execute("COMMIT")  # the lock stays: exclusive locking mode holds it until the close
        except sqlite3.OperationalError as error:
            raise StoreInUse(
                f"{live} is open in another process ({error}): a gateway, one of its workers or another boltgate "
                "command. Stop every gateway on data_dir, then restore") from error
        except sqlite3.DatabaseError as error:  # not a database: whether a process has it open cannot be told
            raise ValueError(
                f"{live} cannot be read as a database ({error}): with every gateway on data_dir stopped, move it "
                "and any -wal and -shm beside it aside, then restore") from error
        if fold_log:
            connection.execute("PRAGMA journal_mode=DELETE")
        yield
    finally:
        connection.close()


def _same_owner_and_mode(staged: Path, live: Path) -> None:
    """``staged`` given the replaced file's permissions, and its owner where this process may
    (root): a restore run as root must not leave a store the gateway's user cannot write."""
    info = live.stat()
    os.chmod(staged, stat.S_IMODE(info.st_mode))
    with suppress(PermissionError):
        os.chown(staged, info.st_uid, info.st_gid)


def _place(staged: Path, live: Path) -> None:
    """No store yet: the companions of one that is gone are removed (an old log would be replayed
    onto the new file), then ``staged`` takes the name, unless a store appeared meanwhile."""
    for suffix in COMPANIONS:
        Path(f"{live}{suffix}").unlink(missing_ok=True)
    try:
        os.link(staged, live)
    except FileExistsError as error:
        raise ValueError(f"{live} appeared during the restore: was a gateway started? Stop it, then restore") \
            from error
    fsync_directory(live.parent)
