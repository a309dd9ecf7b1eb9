"""``boltgate usage export`` prints the whole charge log from ``since`` on, however long: it reads
the store a page at a time, no page size caps what it prints, and each page is written out before
the next is read, so its memory is one page's whatever the log's length; the pages written one
after another are byte for byte the log written at once."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from core.state.sqlite_database import SqliteDatabase
from pricing.charge_log import ChargeRecord, to_csv
from pricing.ledger import Ledger
from proxy.cli import READER_GONE
from proxy.settings import Settings
from proxy.usage_export import export_charges
from proxy.wiring import build_stores
from tests.memory_peak import heap_peak

ROOT = Path(__file__).resolve().parents[2]
LOGGED = 10_050
"""More than the store's largest page (10,000): the export used to stop there, silently."""


def log_directly(data_dir: Path, count: int, *, first: int = 0) -> None:
    """``count`` charges in the SQLite file, all at one instant (written straight into its table:
    ten thousand settles through the ledger would take long and prove nothing more)."""
    entries = [ChargeRecord(key_id="k", request_id=f"r{index}", vendor="runflow", region="us",
                            vendor_request_id=None, images=1, run_seconds=None, catalog_cost_usd=Decimal("0.003"),
                            vendor_reported_cost_usd=None, client_usd=Decimal("0.004")).to_entry()
               for index in range(first, first + count)]
    now = time.time()
    database = SqliteDatabase.in_directory(data_dir)
    with database.transaction() as db:
        db.executemany("INSERT INTO charges (at, entry) VALUES (?, ?)", [(now, entry) for entry in entries])
    database.close()


def sqlite_settings(data_dir: Path) -> Settings:
    return Settings(state_backend="sqlite", data_dir=data_dir, simulators="off")


async def exported(settings: Settings, output_format: str, *, page_size: int = 10_000) -> str:
    out = io.StringIO()
    await export_charges(settings, "2000-01-01", output_format, out, page_size=page_size)
    return out.getvalue()


async def test_the_export_goes_past_the_largest_page(tmp_path: Path) -> None:
    log_directly(tmp_path, LOGGED)

    lines = (await exported(sqlite_settings(tmp_path), "csv")).splitlines()

    assert len(lines) == 1 + LOGGED
    assert [line.split(",")[2] for line in lines[1:]] == [f"r{index}" for index in range(LOGGED)]


async def whole_log(settings: Settings) -> list[ChargeRecord]:
    """Every charge, read in one page."""
    stores = build_stores(settings)
    try:
        ledger = Ledger(stores.book, stores.durable, settings.pricing.credit_usd)
        page = await ledger.charges(datetime(2000, 1, 1, tzinfo=UTC), limit=10_000)
    finally:
        await stores.aclose()
    assert not page.has_more
    return page.records


@pytest.mark.parametrize("logged", [0, 1, 6, 7])
async def test_pages_written_one_after_another_are_the_log_written_at_once(tmp_path: Path, logged: int) -> None:
    """One header, then every row once, in order, across page ends (page size 3: none, one, two
    full pages, and two and a bit)."""
    log_directly(tmp_path, logged)
    settings = sqlite_settings(tmp_path)
    records = await whole_log(settings)

    csv_text = await exported(settings, "csv", page_size=3)
    json_lines = await exported(settings, "jsonl", page_size=3)

    assert csv_text == to_csv(records)
    assert json_lines == "".join(orjson.dumps(record.to_json()).decode() + "\n" for record in records)
    assert len(csv_text.splitlines()) == 1 + logged


class CountingOutput:
    """Where the export writes, keeping nothing (as a pipe to another program would)."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, text: str) -> int:
        self.written += len(text)
        return len(text)


async def test_the_memory_an_export_takes_does_not_grow_with_the_charges_it_writes(tmp_path: Path) -> None:
    """Twenty times the charges cost no more heap than one page's worth of variation. Holding the
    charges costs about 1 KB each (the export that gathered the log before writing peaked at
    4.9 MB for 5,000); an export that holds a page grows by well under 200 bytes per charge
    logged (measured: about 10, 0.30 MB then 0.40 MB)."""
    small, large, page_size = 500, 10_000, 100
    few, many = tmp_path / "few", tmp_path / "many"
    log_directly(few, small)
    log_directly(many, large)
    await exported(sqlite_settings(few), "csv", page_size=page_size)  # first-use allocations, kept for good
    peaks = []
    for data_dir in (few, many):
        out = CountingOutput()
        with heap_peak() as peak:
            await export_charges(sqlite_settings(data_dir), "2000-01-01", "csv", out, page_size=page_size)
        peaks.append(peak.bytes)
        assert out.written > 60 * small
    growth_per_charge = (peaks[1] - peaks[0]) / (large - small)
    assert growth_per_charge < 200, f"heap peaks {peaks} bytes: {growth_per_charge:.0f} bytes more per charge"


def test_an_export_piped_into_a_reader_that_stops_early_exits_quietly(tmp_path: Path) -> None:
    """``boltgate usage export | head``: the reader closes the pipe after a few lines while the
    export still has pages to write; the command ends without a traceback, as a shell tool does."""
    log_directly(tmp_path, LOGGED)
    config = tmp_path / "boltgate.toml"
    config.write_text(f'state_backend = "sqlite"\ndata_dir = "{tmp_path}"\nsimulators = "off"\n')
    environment = {name: value for name, value in os.environ.items() if not name.startswith("BOLTGATE_")}
    export = subprocess.Popen([sys.executable, "-m", "proxy", "usage", "export", "--config", str(config),
                               "--since", "2000-01-01"], cwd=ROOT, env=environment,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert export.stdout is not None and export.stderr is not None
    assert export.stdout.readline().startswith(b"at,")  # the header: the export is writing
    export.stdout.close()  # as `head -1` does: the rest (a megabyte, far past the pipe's buffer) has nowhere to go

    stderr = export.stderr.read().decode()
    status = export.wait(timeout=60)

    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
    assert status == READER_GONE, (status, stderr)  # a shell tool's `| head` status (SIGPIPE), not an error's 1
