"""``boltgate usage export`` prints the whole charge log from ``since`` on, however long: it reads
the store a page at a time, and no page size caps what it prints."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

from core.state.sqlite_database import SqliteDatabase
from pricing.charge_log import ChargeRecord
from proxy.settings import Settings
from proxy.usage_export import export_charges

LOGGED = 10_050
"""More than the store's largest page (10,000): the export used to stop there, silently."""


def log_directly(data_dir: Path, count: int) -> None:
    """``count`` charges in the SQLite file, all at one instant (written straight into its table:
    ten thousand settles through the ledger would take long and prove nothing more)."""
    entries = [ChargeRecord(key_id="k", request_id=f"r{index}", vendor="runflow", region="us",
                            vendor_request_id=None, images=1, run_seconds=None, catalog_cost_usd=Decimal("0.003"),
                            vendor_reported_cost_usd=None, client_usd=Decimal("0.004")).to_entry()
               for index in range(count)]
    now = time.time()
    database = SqliteDatabase.in_directory(data_dir)
    with database.transaction() as db:
        db.executemany("INSERT INTO charges (at, entry) VALUES (?, ?)", [(now, entry) for entry in entries])
    database.close()


async def test_the_export_goes_past_the_largest_page(tmp_path: Path) -> None:
    log_directly(tmp_path, LOGGED)
    settings = Settings(state_backend="sqlite", data_dir=tmp_path, simulators="off")

    lines = (await export_charges(settings, "2000-01-01", "csv")).splitlines()

    assert len(lines) == 1 + LOGGED
    assert [line.split(",")[2] for line in lines[1:]] == [f"r{index}" for index in range(LOGGED)]
