"""``boltgate state backup DEST``: the embedded store copied as of one commit, while it is written,
into one file that a gateway can start on (what spent, held and was charged is all there)."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.state.sqlite_database import DATABASE_NAME, SqliteDatabase
from core.state.sqlite_ledger import SqliteLedgerStore
from proxy.cli import main
from proxy.settings import Settings
from proxy.state_backup import back_up, database_path

LEASE_S = 3600.0


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def env(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI's settings: the embedded store in ``data_dir``."""
    monkeypatch.setenv("BOLTGATE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("BOLTGATE_STATE_BACKEND", "sqlite")
    monkeypatch.delenv("BOLTGATE_CONFIG", raising=False)
    return data_dir


async def spend(data_dir: Path) -> None:
    """A key that spent 700 (two charges logged) and holds 300 more."""
    database = SqliteDatabase.in_directory(data_dir)
    ledger = SqliteLedgerStore(database)
    try:
        for hold_id, amount in (("h1", 300), ("h2", 400), ("h3", 300)):
            assert await ledger.hold("key-1", hold_id, amount, limit=1000, lease_s=LEASE_S)
        await ledger.settle("key-1", "h1", 300, limit=1000, entry=b"first charge")
        await ledger.settle("key-1", "h2", 400, limit=1000, entry=b"second charge")
    finally:
        await ledger.aclose()
        database.close()


async def test_a_gateway_started_on_the_backup_finds_the_spend_the_holds_and_the_charge_log(
        env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await spend(env)
    dest = tmp_path / "backup.sqlite3"

    assert main(["state", "backup", str(dest)]) == 0
    assert "2 charges in the log" in capsys.readouterr().out

    restored = tmp_path / "restored"
    restored.mkdir()
    shutil.copy(dest, restored / DATABASE_NAME)  # the restore: the one file, nothing beside it
    database = SqliteDatabase.in_directory(restored)
    ledger = SqliteLedgerStore(database)
    try:
        balance = await ledger.balance("key-1")
        assert (balance.spent, balance.held) == (700, 300)
        assert [charge.entry for charge in await ledger.charges(0)] == [b"first charge", b"second charge"]
        assert not await ledger.hold("key-1", "h4", 1, limit=1000, lease_s=LEASE_S)  # the budget is as full
    finally:
        await ledger.aclose()
        database.close()


def test_the_backup_is_one_self_contained_file(env: Path, tmp_path: Path) -> None:
    """Made while the store's write-ahead log holds its latest commits, the copy has them, in
    itself: it is in rollback-journal mode, with no ``-wal`` to carry."""
    database = SqliteDatabase.in_directory(env)
    with database.transaction() as db:
        db.execute("INSERT INTO spent (account, amount) VALUES ('k', 42)")
    dest = tmp_path / "backup.sqlite3"

    back_up(database_path(Settings(state_backend="sqlite", data_dir=env)), dest)
    database.close()

    copy = sqlite3.connect(f"{dest.as_uri()}?mode=ro", uri=True)
    try:
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert copy.execute("SELECT amount FROM spent WHERE account = 'k'").fetchone() == (42,)
    finally:
        copy.close()
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith("backup")) == ["backup.sqlite3"]


@pytest.fixture
def writing(env: Path) -> Iterator[threading.Event]:
    """Another connection committing, as fast as it can, transactions that each move 1 from one
    account to another: in any one commit's state the two add up to 0."""
    SqliteDatabase.in_directory(env).close()
    stop = threading.Event()

    def write() -> None:
        connection = sqlite3.connect(env / DATABASE_NAME, timeout=10, isolation_level=None)
        connection.execute("INSERT OR IGNORE INTO spent (account, amount) VALUES ('from', 0), ('to', 0)")
        while not stop.is_set():
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("UPDATE spent SET amount = amount - 1 WHERE account = 'from'")
            connection.execute("UPDATE spent SET amount = amount + 1 WHERE account = 'to'")
            connection.execute("COMMIT")
        connection.close()

    writer = threading.Thread(target=write)
    writer.start()
    yield stop
    stop.set()
    writer.join()


def test_backups_taken_while_the_store_is_written_are_each_one_commits_state(
        env: Path, tmp_path: Path, writing: threading.Event) -> None:
    source = database_path(Settings(state_backend="sqlite", data_dir=env))
    moved = []
    for index in range(5):
        dest = tmp_path / f"backup-{index}.sqlite3"
        back_up(source, dest)
        copy = sqlite3.connect(dest)
        try:
            amounts = dict(copy.execute("SELECT account, amount FROM spent").fetchall())
        finally:
            copy.close()
        assert amounts.get("from", 0) + amounts.get("to", 0) == 0, amounts  # never half a transaction
        moved.append(amounts.get("to", 0))
    assert moved[-1] > 0  # the writer was writing meanwhile


def test_an_existing_backup_is_replaced_only_when_asked(env: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    SqliteDatabase.in_directory(env).close()
    dest = tmp_path / "backup.sqlite3"
    dest.write_bytes(b"yesterday's backup")

    assert main(["state", "backup", str(dest)]) == 1
    assert "exists (use --force" in capsys.readouterr().err
    assert dest.read_bytes() == b"yesterday's backup"

    assert main(["state", "backup", "--force", str(dest)]) == 0
    assert dest.read_bytes().startswith(b"SQLite format 3\x00")


@pytest.mark.parametrize(("backend", "says"), [("redis", "back up Redis itself"), ("memory", "nothing is kept")])
def test_a_store_that_is_not_the_embedded_file_is_refused_with_what_to_do(
        backend: str, says: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=says):
        database_path(Settings(state_backend=backend, data_dir=tmp_path))  # type: ignore[arg-type]


def test_a_data_dir_without_a_store_is_refused(env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["state", "backup", str(tmp_path / "backup.sqlite3")]) == 1
    assert "no embedded store at" in capsys.readouterr().err
    assert not (tmp_path / "backup.sqlite3").exists()


def test_the_store_itself_is_never_the_destination(env: Path) -> None:
    SqliteDatabase.in_directory(env).close()
    source = env / DATABASE_NAME

    with pytest.raises(ValueError, match="is the store itself"):
        back_up(source, source, overwrite=True)
