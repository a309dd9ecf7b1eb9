"""``boltgate state restore --pending``, as the chart's init container runs it before every start:
a backup put in ``data_dir`` as ``restore.sqlite3`` is restored once; nothing else is touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.state.sqlite_database import SqliteDatabase
from proxy.cli import main
from proxy.pending_restore import PENDING_NAME
from tests.proxy.state_store_files import beside, books, charge, cli_data_dir

PENDING = ["state", "restore", "--pending"]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return cli_data_dir(tmp_path, monkeypatch)


async def backed_up_as_pending(data_dir: Path) -> Path:
    """h1 charged and backed up as the pending restore (what ``kubectl cp`` puts there), then h2."""
    await charge(data_dir, "key-1", "h1", 300)
    assert main(["state", "backup", str(data_dir / PENDING_NAME)]) == 0
    await charge(data_dir, "key-1", "h2", 400)
    return data_dir / PENDING_NAME


async def test_a_start_with_nothing_pending_changes_nothing(
        data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await charge(data_dir, "key-1", "h1", 300)
    before = beside(data_dir)

    assert main(PENDING) == 0

    assert "nothing to do" in capsys.readouterr().out
    assert beside(data_dir) == before


async def test_a_start_on_a_data_dir_not_made_yet_changes_nothing(data_dir: Path) -> None:
    assert main(PENDING) == 0
    assert not data_dir.exists()


async def test_a_pending_backup_is_restored_once_and_moved_aside(
        data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pending = await backed_up_as_pending(data_dir)

    assert main(PENDING) == 0

    assert "moved aside" in capsys.readouterr().out
    assert not pending.exists()
    assert len(list(data_dir.glob(f"{PENDING_NAME}.restored-*"))) == 1
    assert len(list(data_dir.glob("*.before-restore-*"))) == 1
    assert await books(data_dir) == (300, 0, [b"h1"], [])
    await charge(data_dir, "key-1", "h3", 500)  # the gateway serves on the restored store

    assert main(PENDING) == 0  # its next start

    assert await books(data_dir) == (800, 0, [b"h1", b"h3"], [])  # not restored again


async def test_a_pending_file_that_is_not_a_backup_is_moved_aside_and_the_store_kept(
        data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await charge(data_dir, "key-1", "h1", 300)
    (data_dir / PENDING_NAME).write_bytes(b"the wrong file, copied by mistake")
    store_before = beside(data_dir)

    assert main(PENDING) == 1

    assert f"moved to {PENDING_NAME}.refused-" in capsys.readouterr().err
    refused = next(data_dir.glob(f"{PENDING_NAME}.refused-*"))
    assert refused.read_bytes() == b"the wrong file, copied by mistake"
    assert {name: text for name, text in beside(data_dir).items() if name != refused.name} == \
        {name: text for name, text in store_before.items() if name != PENDING_NAME}
    assert main(PENDING) == 0  # the init container's retry: the gateway starts on the store it had
    assert await books(data_dir) == (300, 0, [b"h1"], [])


async def test_a_pending_restore_while_the_store_is_open_is_left_to_try_again(
        data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pending = await backed_up_as_pending(data_dir)
    old_gateway = SqliteDatabase.in_directory(data_dir)  # the old pod has not let go yet
    try:
        assert main(PENDING) == 1
    finally:
        old_gateway.close()

    assert "is open in another process" in capsys.readouterr().err
    assert pending.exists()
    assert main(PENDING) == 0
    assert await books(data_dir) == (300, 0, [b"h1"], [])


@pytest.mark.parametrize("arguments", [["state", "restore"], ["state", "restore", "--pending", "b.sqlite3"]])
def test_a_source_and_pending_together_or_neither_is_a_usage_error(
        data_dir: Path, arguments: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(arguments) == 2
    assert "give a SOURCE file or --pending" in capsys.readouterr().err
