"""WAL checkpoints run on the checkpointer's thread, never in a commit on the event loop: the
loop's connection has autocheckpoint off, yet what it commits reaches the main file, the WAL
starts over under sustained writes, and the thread ends with the database."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import struct
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from core.state.sqlite_checkpointer import WalCheckpointer
from core.state.sqlite_database import DATABASE_NAME, SqliteDatabase

GIVE_UP_S = 30.0


def wait_until(condition: Callable[[], bool], *, doing: Callable[[], None] = lambda: None) -> bool:
    """Whether ``condition`` came true (``doing`` each try) before ``GIVE_UP_S``."""
    give_up = time.monotonic() + GIVE_UP_S
    while time.monotonic() < give_up:
        if condition():
            return True
        doing()
        time.sleep(0.005)
    return condition()


def main_file_alone_holds(path: Path, key: str, scratch: Path) -> bool:
    """Whether the main file, copied without its WAL, has ``key``: only a checkpoint puts it there."""
    shutil.copyfile(path, scratch)
    try:
        with sqlite3.connect(scratch) as copy:
            return copy.execute("SELECT 1 FROM entries WHERE key = ?", (key,)).fetchone() is not None
    except sqlite3.Error:  # not checkpointed yet (no table), or copied mid-checkpoint
        return False
    finally:
        copy.close()
        for suffix in ("", "-wal", "-shm"):
            scratch.with_name(scratch.name + suffix).unlink(missing_ok=True)


def put(database: SqliteDatabase, key: str) -> None:
    with database.transaction() as db:
        db.execute("INSERT OR REPLACE INTO entries (key, kind, value) VALUES (?, 'string', ?)", (key, b"v" * 500))


def wal_starts(path: Path) -> int:
    """The WAL header's checkpoint sequence number: it moves each time the WAL starts over."""
    with open(path.with_name(path.name + "-wal"), "rb") as wal:
        return int(struct.unpack(">I", wal.read(32)[12:16])[0])


def test_the_loop_connection_leaves_checkpoints_to_the_thread(tmp_path: Path) -> None:
    database = SqliteDatabase.in_directory(tmp_path)
    try:
        assert database.connection.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
        assert database.checkpointer.running
    finally:
        database.close()


def test_what_the_loop_commits_reaches_the_main_file_through_the_thread(tmp_path: Path) -> None:
    database = SqliteDatabase(tmp_path / DATABASE_NAME, checkpoint_interval_s=0.01)
    try:
        put(database, "reached")
        assert wait_until(lambda: main_file_alone_holds(database.path, "reached", tmp_path / "copy.sqlite3"))
    finally:
        database.close()


def test_under_sustained_writes_the_wal_starts_over(tmp_path: Path) -> None:
    """A checkpoint that copies while the loop commits never leaves the WAL all copied when a write
    begins: the thread's RESTART is what lets it start over."""
    database = SqliteDatabase(tmp_path / DATABASE_NAME, checkpoint_interval_s=0.01, checkpoint_restart_frames=50)
    try:
        put(database, "first")
        first = wal_starts(database.path)
        give_up = time.monotonic() + GIVE_UP_S
        while wal_starts(database.path) == first and time.monotonic() < give_up:  # no pause between writes
            for index in range(20):
                put(database, f"k{index}")
        assert wal_starts(database.path) != first  # from then on its file is written over from the start
    finally:
        database.close()


def test_closing_the_database_stops_its_thread(tmp_path: Path) -> None:
    database = SqliteDatabase.in_directory(tmp_path)
    database.close()
    assert not database.checkpointer.running
    database.close()  # the state store and the ledger store both close it


def test_two_databases_on_one_file_each_checkpoint_without_errors(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """Two processes (``--workers``) on one file each run a checkpointer: one busy is skipped."""
    caplog.set_level(logging.WARNING, logger="core.state.sqlite_checkpointer")
    path = tmp_path / DATABASE_NAME
    one, two = SqliteDatabase(path, checkpoint_interval_s=0.005), SqliteDatabase(path, checkpoint_interval_s=0.005)
    try:
        put(one, "from one")
        put(two, "from two")

        def write_through_both() -> None:
            put(one, "again one")
            put(two, "again two")

        assert wait_until(lambda: one.checkpointer.checkpoints_run > 5 and two.checkpointer.checkpoints_run > 5,
                          doing=write_through_both)
        assert wait_until(lambda: all(main_file_alone_holds(path, key, tmp_path / "copy.sqlite3")
                                      for key in ("from one", "from two")))
    finally:
        one.close()
        two.close()
    assert not caplog.records


def test_a_checkpointer_that_fails_logs_and_tries_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="core.state.sqlite_checkpointer")
    path = tmp_path / "not yet" / DATABASE_NAME  # no directory: the connection cannot be opened
    checkpointer = WalCheckpointer(path, interval_s=0.005)
    try:
        assert wait_until(lambda: any("failed" in record.getMessage() for record in caplog.records))
        assert checkpointer.running and checkpointer.checkpoints_run == 0
        database = SqliteDatabase(path)
        try:
            assert wait_until(lambda: checkpointer.checkpoints_run > 0)
        finally:
            database.close()
    finally:
        checkpointer.stop()
    assert not checkpointer.running
