"""The embedded store's lock file: a restore never runs under a process that has the store open,
and a process opening the store during a restore waits, then opens the restored file."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from core.errors import StateUnavailable, StoreInUse
from core.state import store_lock
from core.state.sqlite import SqliteStateStore
from core.state.sqlite_database import DATABASE_NAME, SqliteDatabase
from core.state.store_lock import hold_exclusively


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / DATABASE_NAME


def database_saying(path: Path, text: str) -> Path:
    """A store file whose ``entries`` hold ``said`` = ``text`` (made as a gateway makes it)."""
    database = SqliteDatabase(path)
    try:
        database.connection.execute("INSERT INTO entries (key, kind, value) VALUES ('said', 'string', ?)",
                                    (text.encode(),))
    finally:
        database.close()
    return path


async def said(database: SqliteDatabase) -> bytes | None:
    return await SqliteStateStore(database).get("said")


def test_a_restore_is_refused_while_a_process_has_the_store_open(store: Path) -> None:
    database = SqliteDatabase(store)
    try:
        with pytest.raises(StoreInUse, match="is open in another process"):
            hold_exclusively(store)
    finally:
        database.close()
    hold_exclusively(store).release()  # closed: nothing holds it any more


def test_every_open_shares_the_lock_and_holds_it_until_closed(store: Path) -> None:
    one, two = SqliteDatabase(store), SqliteDatabase(store)  # two workers on one file
    one.close()
    with pytest.raises(StoreInUse):
        hold_exclusively(store)
    two.close()
    hold_exclusively(store).release()


def test_opening_the_store_during_a_restore_gives_up_after_its_wait_and_says_why(
        store: Path, caplog: pytest.LogCaptureFixture) -> None:
    database_saying(store, "old")
    restoring = hold_exclusively(store)
    try:
        with pytest.raises(StateUnavailable, match="being restored"):
            SqliteDatabase(store, restore_wait_s=0.2)
    finally:
        restoring.release()
    assert "is being restored (boltgate state restore): waiting up to 0.2 s" in caplog.text  # said while waiting
    assert not any(path.name.endswith("-wal") for path in store.parent.iterdir())  # it never opened the file


def polls_seen(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Set once ``share`` has found the lock taken and waits to try again."""
    polled = threading.Event()
    real_sleep: Callable[[float], None] = time.sleep

    def noting_sleep(seconds: float) -> None:
        polled.set()
        real_sleep(seconds)

    monkeypatch.setattr(store_lock.time, "sleep", noting_sleep)
    return polled


async def test_a_process_opening_the_store_during_a_restore_opens_the_restored_file(
        store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The race the lock closes: SQLite's own locks are on the old file, so a process that opened
    the name before the rename would have gone on writing into the replaced store."""
    database_saying(store, "old")
    restored = database_saying(tmp_path / "restored" / DATABASE_NAME, "restored")
    polled = polls_seen(monkeypatch)
    restoring = hold_exclusively(store)
    with ThreadPoolExecutor(1) as pool:
        opening: Future[SqliteDatabase] = pool.submit(SqliteDatabase, store)
        try:
            assert polled.wait(10), "the open did not wait for the restore"
            restored.replace(store)  # the restore's rename, while the gateway is starting
        finally:
            restoring.release()
        database = opening.result(timeout=10)
    try:
        assert await said(database) == b"restored"
    finally:
        database.close()


def test_a_file_that_is_not_a_database_releases_the_lock_it_took(store: Path) -> None:
    store.write_bytes(b"not a database, but long enough to be read as a header" * 20)
    with pytest.raises(sqlite3.DatabaseError):
        SqliteDatabase(store)
    hold_exclusively(store).release()
