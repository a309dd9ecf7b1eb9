"""The embedded store as the ``boltgate state`` commands' tests use it: a ``data_dir`` the CLI's
settings point at, charges and keys made in it, and what a restore must bring back."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from core.state.sqlite import SqliteStateStore
from core.state.sqlite_database import DATABASE_NAME, SqliteDatabase
from core.state.sqlite_ledger import SqliteLedgerStore
from core.state.store_lock import lock_path
from pricing.keys import ApiKeyRegistry

LEASE_S = 3600.0
LIMIT = 10_000


def cli_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI's settings: the embedded store in ``tmp_path/data``."""
    data_dir = tmp_path / "data"
    monkeypatch.setenv("BOLTGATE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("BOLTGATE_STATE_BACKEND", "sqlite")
    monkeypatch.delenv("BOLTGATE_CONFIG", raising=False)
    return data_dir


async def charge(data_dir: Path, account: str, hold_id: str, amount: int) -> None:
    """A hold of ``amount`` settled: spent, and one charge logged."""
    database = SqliteDatabase.in_directory(data_dir)
    ledger = SqliteLedgerStore(database)
    try:
        assert await ledger.hold(account, hold_id, amount, limit=LIMIT, lease_s=LEASE_S)
        await ledger.settle(account, hold_id, amount, limit=LIMIT, entry=hold_id.encode())
    finally:
        await ledger.aclose()
        database.close()


async def create_key(data_dir: Path, name: str) -> str:
    database = SqliteDatabase.in_directory(data_dir)
    try:
        _, record = await ApiKeyRegistry(SqliteStateStore(database)).create(name, Decimal("5"))
    finally:
        database.close()
    return record.key_id


async def books(data_dir: Path) -> tuple[int, int, list[bytes], list[tuple[str, str, bool]]]:
    """key-1's spent and held, the charge log, the stored keys: what a restore must bring back."""
    database = SqliteDatabase.in_directory(data_dir)
    ledger = SqliteLedgerStore(database)
    try:
        balance = await ledger.balance("key-1")
        charges = [charge.entry for charge in await ledger.charges(0)]
        keys = [(key.key_id, key.name, key.revoked) for key in await ApiKeyRegistry(SqliteStateStore(database)).list()]
    finally:
        await ledger.aclose()
        database.close()
    return balance.spent, balance.held, charges, keys


STORE = sorted([DATABASE_NAME, lock_path(Path(DATABASE_NAME)).name])
"""What a restore leaves in ``data_dir``, the replaced store aside: the store and its lock file."""


def beside(data_dir: Path) -> dict[str, bytes]:
    """Every file in ``data_dir`` (the store, its companions, kept stores) and its bytes."""
    return {path.name: path.read_bytes() for path in sorted(data_dir.iterdir()) if path.is_file()}
