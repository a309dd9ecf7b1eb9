"""A charge-log entry keeps every field exactly: decimals as their own text, read back as equal."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import orjson

from pricing.charge_log import ChargeRecord

RECORD = ChargeRecord(
    key_id="key-1", request_id="hold-1", vendor="eachlabs", region="us", vendor_request_id="pred-9", images=2,
    run_seconds=Decimal("3.50"), catalog_cost_usd=Decimal("0.005390"), vendor_reported_cost_usd=None,
    client_usd=Decimal("0.007277"),
)


def test_an_entry_holds_decimals_as_their_exact_text_and_no_time() -> None:
    stored = orjson.loads(RECORD.to_entry())
    assert stored["run_seconds"] == "3.50" and stored["client_usd"] == "0.007277"
    assert stored["vendor_reported_cost_usd"] is None and stored["images"] == 2
    assert "at" not in stored


def test_an_entry_reads_back_as_the_record_with_its_time() -> None:
    read = ChargeRecord.from_entry(RECORD.to_entry(), 1_800_000_000.0)
    assert read == dataclasses.replace(RECORD, at=datetime.fromtimestamp(1_800_000_000.0, UTC))
    assert str(read.run_seconds) == "3.50"
