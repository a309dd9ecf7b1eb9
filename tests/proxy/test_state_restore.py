"""``boltgate state restore SOURCE``: a backup becomes the embedded store, whole, with the old
write-ahead log never replayed onto it and the replaced store kept; refused, with the live file
byte for byte as it was, for a source that is not a boltgate store, a store that is not a file
here, and while another process has the store open."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.state.sqlite_database import DATABASE_NAME
from proxy.cli import main
from tests.proxy.state_store_files import STORE, beside, books, charge, cli_data_dir, create_key

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return cli_data_dir(tmp_path, monkeypatch)


async def test_a_restore_brings_back_the_spend_the_charges_and_the_keys_as_backed_up(
        data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await charge(data_dir, "key-1", "h1", 300)
    key_id = await create_key(data_dir, "alice")
    backup = tmp_path / "backup.sqlite3"
    assert main(["state", "backup", str(backup)]) == 0
    backed_up = await books(data_dir)
    await charge(data_dir, "key-1", "h2", 400)  # after the backup: not in it
    await create_key(data_dir, "bob")
    after_backup = await books(data_dir)
    capsys.readouterr()

    assert main(["state", "restore", str(backup)]) == 0

    said = capsys.readouterr().out
    assert await books(data_dir) == backed_up == (300, 0, [b"h1"], [(key_id, "alice", False)])
    assert "1 charges in the log, 1 stored keys" in said
    assert "images are not in a backup" in said
    (kept,) = data_dir.glob(f"{DATABASE_NAME}.before-restore-*")
    assert f"kept as {kept}" in said
    os.replace(kept, data_dir / DATABASE_NAME)  # the kept store is the one replaced, whole
    assert await books(data_dir) == after_backup


async def test_the_log_of_a_killed_gateway_is_folded_into_the_kept_store_and_never_replayed_onto_the_restored(
        data_dir: Path, tmp_path: Path) -> None:
    await charge(data_dir, "key-1", "h1", 300)
    backup = tmp_path / "backup.sqlite3"
    assert main(["state", "backup", str(backup)]) == 0
    written = subprocess.run([sys.executable, "-c", KILLED_WRITING], cwd=REPO,
                             env={**os.environ, "DATA": str(data_dir)}, check=False)
    assert written.returncode == -signal.SIGKILL
    assert (data_dir / f"{DATABASE_NAME}-wal").stat().st_size > 0  # its last commit is only in its log

    assert main(["state", "restore", str(backup)]) == 0

    assert sorted(beside(data_dir)) == sorted([*STORE, next(data_dir.glob("*.before-restore-*")).name])
    assert await books(data_dir) == (300, 0, [b"h1"], [])
    os.replace(next(data_dir.glob("*.before-restore-*")), data_dir / DATABASE_NAME)
    assert (await books(data_dir))[:3] == (300 + 400, 0, [b"h1", b"h2"])


KILLED_WRITING = """
import asyncio, os, signal
from pathlib import Path
from core.state.sqlite_database import SqliteDatabase
from core.state.sqlite_ledger import SqliteLedgerStore

async def main() -> None:
    ledger = SqliteLedgerStore(SqliteDatabase.in_directory(Path(os.environ["DATA"])))
    assert await ledger.hold("key-1", "h2", 400, limit=10_000, lease_s=3600)
    await ledger.settle("key-1", "h2", 400, limit=10_000, entry=b"h2")
    os.kill(os.getpid(), signal.SIGKILL)  # no close: no checkpoint, the log left as it is

asyncio.run(main())
"""


async def test_the_replaced_store_is_not_kept_when_told_so(data_dir: Path, tmp_path: Path) -> None:
    await charge(data_dir, "key-1", "h1", 300)
    backup = tmp_path / "backup.sqlite3"
    assert main(["state", "backup", str(backup)]) == 0

    assert main(["state", "restore", "--discard-replaced", str(backup)]) == 0

    assert sorted(beside(data_dir)) == STORE


async def test_the_restored_store_has_the_replaced_ones_mode(data_dir: Path, tmp_path: Path) -> None:
    await charge(data_dir, "key-1", "h1", 300)
    backup = tmp_path / "backup.sqlite3"
    assert main(["state", "backup", str(backup)]) == 0
    (data_dir / DATABASE_NAME).chmod(0o600)
    backup.chmod(0o644)

    assert main(["state", "restore", str(backup)]) == 0

    assert (data_dir / DATABASE_NAME).stat().st_mode & 0o777 == 0o600


async def test_a_backup_is_restored_into_a_data_dir_without_a_store(data_dir: Path, tmp_path: Path) -> None:
    await charge(data_dir, "key-1", "h1", 300)
    backup = tmp_path / "backup.sqlite3"
    assert main(["state", "backup", str(backup)]) == 0
    for path in data_dir.iterdir():
        path.unlink()
    (data_dir / f"{DATABASE_NAME}-wal").write_bytes(b"a log left by a store that is gone")

    assert main(["state", "restore", str(backup)]) == 0

    assert sorted(beside(data_dir)) == STORE
    assert await books(data_dir) == (300, 0, [b"h1"], [])


def sqlite_file(path: Path, *statements: str) -> Path:
    import sqlite3

    connection = sqlite3.connect(path)
    for statement in statements:
        connection.execute(statement)
    connection.commit()
    connection.close()
    return path


def corrupted_backup(path: Path) -> Path:
    """A backup whose charge log's pages were overwritten: a SQLite file that fails its check."""
    sqlite_file(path, "CREATE TABLE entries (key)", "CREATE TABLE hash_fields (key)", "CREATE TABLE spent (a)",
                "CREATE TABLE holds (a)", "CREATE TABLE closed (a)", "CREATE TABLE charges (at, entry)",
                "CREATE INDEX charges_at ON charges (at)",
                *[f"INSERT INTO charges VALUES ({n}, randomblob(200))" for n in range(200)])
    data = bytearray(path.read_bytes())
    data[4096 * 3:4096 * 3 + 512] = os.urandom(512)
    path.write_bytes(bytes(data))
    return path


SOURCES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "missing": (lambda tmp: tmp / "nowhere.sqlite3", "is not a file"),
    "not SQLite": (lambda tmp: (tmp / "notes.txt", (tmp / "notes.txt").write_text("hello"))[0],
                   "is not a SQLite database"),
    "another program's database": (lambda tmp: sqlite_file(tmp / "other.sqlite3", "CREATE TABLE t (x)"),
                                   "is not a boltgate store: it has no entries, hash_fields, spent"),
    "corrupted": (lambda tmp: corrupted_backup(tmp / "backup.sqlite3"), "backup.sqlite3"),
}


@pytest.mark.parametrize("source", list(SOURCES))
async def test_a_source_that_is_not_a_sound_boltgate_store_is_refused_and_nothing_changes(
        source: str, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await charge(data_dir, "key-1", "h1", 300)
    make, says = SOURCES[source]
    path = make(tmp_path)
    before = beside(data_dir)

    assert main(["state", "restore", str(path)]) == 1

    err = capsys.readouterr().err
    assert says in err and "nothing was changed" in err
    assert beside(data_dir) == before


async def test_the_store_itself_is_not_a_source(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await charge(data_dir, "key-1", "h1", 300)
    before = beside(data_dir)

    assert main(["state", "restore", str(data_dir / DATABASE_NAME)]) == 1

    assert "is the store itself" in capsys.readouterr().err
    assert beside(data_dir) == before


async def test_a_store_that_cannot_be_read_is_left_for_the_operator_to_move_aside(
        data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await charge(data_dir, "key-1", "h1", 300)
    backup = tmp_path / "backup.sqlite3"
    assert main(["state", "backup", str(backup)]) == 0
    (data_dir / DATABASE_NAME).write_bytes(b"not a database any more" * 200)
    before = beside(data_dir)

    assert main(["state", "restore", str(backup)]) == 1

    assert "move it and any -wal and -shm beside it aside" in capsys.readouterr().err
    assert beside(data_dir) == before


@pytest.mark.parametrize(("backend", "says"), [("redis", "restore Redis itself"), ("memory", "no store to restore")])
async def test_a_store_that_is_not_the_embedded_file_is_refused(
        backend: str, says: str, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    await charge(data_dir, "key-1", "h1", 300)
    backup = tmp_path / "backup.sqlite3"
    assert main(["state", "backup", str(backup)]) == 0
    before = beside(data_dir)
    monkeypatch.setenv("BOLTGATE_STATE_BACKEND", backend)

    assert main(["state", "restore", str(backup)]) == 1

    assert says in capsys.readouterr().err
    assert beside(data_dir) == before


HOLDING = """
import os, sys
from pathlib import Path
from core.state.sqlite_database import SqliteDatabase
database = SqliteDatabase.in_directory(Path(os.environ["DATA"]))
if os.environ["WRITING"] == "1":
    database.connection.execute("BEGIN IMMEDIATE")  # a write transaction, left open
print("open", flush=True)
sys.stdin.read()
"""


@pytest.fixture(params=["idle", "writing"])
def another_process_on_the_store(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[None]:
    """Another process with the store open, as a gateway's worker has it: idle between requests,
    or in the middle of a write."""
    writing = str(int(request.param == "writing"))
    holder = subprocess.Popen([sys.executable, "-c", HOLDING], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "DATA": str(data_dir), "WRITING": writing})
    assert holder.stdout is not None and holder.stdout.readline() == "open\n"
    yield
    assert holder.stdin is not None
    holder.stdin.close()
    assert holder.wait(timeout=30) == 0


@pytest.fixture
async def backup(data_dir: Path, tmp_path: Path) -> Path:
    await charge(data_dir, "key-1", "h1", 300)
    path = tmp_path / "backup.sqlite3"
    assert main(["state", "backup", str(path)]) == 0
    await charge(data_dir, "key-1", "h2", 400)
    return path


def test_a_restore_is_refused_while_another_process_has_the_store_open(
        backup: Path, data_dir: Path, another_process_on_the_store: None, capsys: pytest.CaptureFixture[str]) -> None:
    before = beside(data_dir)

    assert main(["state", "restore", str(backup)]) == 1

    assert "is open in another process" in capsys.readouterr().err
    assert beside(data_dir) == before
