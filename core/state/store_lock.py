"""Who has the embedded store open, told by a lock file beside it that a restore can wait on.

``boltgate state restore`` renames a checked copy onto ``boltgate.sqlite3``. SQLite's own locks
could refuse it while a process had the file open, but they live on the file (its inode), not on
its name: a gateway started while a restore ran opened the name, waited on the restore's lock
on the *old* inode, and once the rename was done and the lock let go went on writing into the
replaced file, its write-ahead log named after the live one (``boltgate.sqlite3-wal``), which
the next process would replay onto the restored file. The README told operators to keep every
gateway stopped; nothing enforced it.

So every process that opens the store through ``SqliteDatabase`` (each gateway worker, every
``boltgate`` command that reads or writes it) first takes a *shared* ``flock`` on
``boltgate.sqlite3.lock``, and holds it for as long as it has the store open; ``state restore``
takes it *exclusively* for the whole restore, refused at once while anyone shares it. A process
starting during a restore waits for it (restores take seconds) up to ``OPEN_WAIT_S``, then
fails with a message saying why, and opens the name only once the lock is its: the restored
file. The kernel drops a ``flock`` when its holder dies, however it dies, so a killed gateway
blocks no restore. The lock file itself holds nothing and is never removed (removing it would
let two processes lock two different files under one name). ``state backup`` reads the file
through a read-only SQLite connection of its own, not this lock: its read transaction holds
SQLite's shared lock, which the restore's exclusive SQLite lock refuses in turn.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
import weakref
from pathlib import Path

from core.errors import StateUnavailable, StoreInUse

LOCK_SUFFIX = ".lock"
OPEN_WAIT_S = 30.0
"""How long opening the store waits for a restore in progress before giving up."""
POLL_S = 0.05

log = logging.getLogger(__name__)


class StoreLock:
    """A held ``flock`` on a store's lock file; ``release`` (or the holder's end) lets it go."""

    def __init__(self, descriptor: int) -> None:
        self._closer = weakref.finalize(self, os.close, descriptor)

    def release(self) -> None:
        self._closer()  # closes the descriptor once, however often called


def lock_path(database: Path) -> Path:
    """The lock file of the store at ``database``: ``boltgate.sqlite3.lock`` beside it."""
    return database.with_name(database.name + LOCK_SUFFIX)


def share(database: Path, *, wait_s: float = OPEN_WAIT_S) -> StoreLock:
    """The shared lock every process opening ``database`` holds while it has it open; waits up to
    ``wait_s`` for a restore that holds it exclusively, then ``StateUnavailable``."""
    descriptor = _open(database)
    if _try(descriptor, fcntl.LOCK_SH):
        return StoreLock(descriptor)
    log.warning("The store at %s is being restored (boltgate state restore): waiting up to %g s for it to end",
                database, wait_s)
    deadline = time.monotonic() + wait_s
    while not _try(descriptor, fcntl.LOCK_SH):
        if time.monotonic() >= deadline:
            os.close(descriptor)
            raise StateUnavailable(
                f"The store at {database} is being restored (boltgate state restore holds {lock_path(database).name}); "
                f"waited {wait_s:g} s. Start again once the restore is done")
        time.sleep(POLL_S)
    return StoreLock(descriptor)


def hold_exclusively(database: Path) -> StoreLock:
    """The lock a restore holds: no process has the store open, and none opens it until released.
    ``StoreInUse`` at once while any process shares it."""
    descriptor = _open(database)
    if not _try(descriptor, fcntl.LOCK_EX):
        os.close(descriptor)
        raise StoreInUse(
            f"{database} is open in another process (it holds {lock_path(database).name}): a gateway, one of its "
            "workers or another boltgate command. Stop every gateway on data_dir, then restore")
    return StoreLock(descriptor)


def _open(database: Path) -> int:
    """The lock file, made if missing. Read-only: a ``flock`` needs no write access, so a lock
    file a restore run as root made is still usable by the gateway's user."""
    database.parent.mkdir(parents=True, exist_ok=True)
    return os.open(lock_path(database), os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)


def _try(descriptor: int, kind: int) -> bool:
    try:
        fcntl.flock(descriptor, kind | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
