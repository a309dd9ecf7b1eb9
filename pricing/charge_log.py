"""The charge log: one entry per charge, to check a vendor's invoice against.

Each entry says who was charged, which vendor served (and its own request id, to find the line
on the vendor's invoice), the cost the catalog gives for what the vendor reported (run time for
time-billed vendors), the cost the vendor reported itself when it does, and the client's price.
Entries are written by the ledger in the same atomic step as their charge, so the log and the
spend always agree; ``boltgate usage export`` and ``GET /v1/admin/charges`` read them, page by
page (``ChargePage``: a page ends after ``limit`` charges, and the next starts after its last,
however many charges share a timestamp). A charge
taken back (``Ledger.void``) is followed by its refund entry: the same request id, the images and
the client's price negated, and no vendor cost (the vendor's invoice line stands on the charge).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from decimal import Decimal

import orjson

MISMATCH_TOLERANCE = Decimal("0.01")
"""A vendor-reported cost further than this (relative) from the catalog's is worth a look."""


@dataclass(frozen=True, slots=True)
class ChargeRecord:
    key_id: str
    request_id: str
    vendor: str
    region: str
    vendor_request_id: str | None
    images: int
    run_seconds: Decimal | None
    """What the vendor reported (time-billed vendors)."""
    catalog_cost_usd: Decimal
    """The vendor's cost by our catalog, for what it reported (before any billable cap)."""
    vendor_reported_cost_usd: Decimal | None
    client_usd: Decimal
    """What the client was charged."""
    at: datetime | None = None
    """When the charge was written (filled in when read back)."""

    def to_entry(self) -> bytes:
        """The stored form: every field but ``at``, decimals as strings. Built field by field, not
        with ``dataclasses.asdict``, whose deep copy of each value cost more than the rest of the
        charge's bookkeeping in Python (it runs on every served request); orjson asks for the text
        of the decimals itself (2.9 us where testing each value took 4.1)."""
        return orjson.dumps({name: getattr(self, name) for name in COLUMNS}, default=_decimal_text)

    @classmethod
    def from_entry(cls, entry: bytes, at: float) -> ChargeRecord:
        data = orjson.loads(entry)
        for name in ("run_seconds", "catalog_cost_usd", "vendor_reported_cost_usd", "client_usd"):
            data[name] = None if data[name] is None else Decimal(data[name])
        return cls(**data, at=datetime.fromtimestamp(at, UTC))

    @property
    def vendor_cost_differs(self) -> bool:
        """The vendor reported a cost more than 1% away from the catalog's."""
        reported = self.vendor_reported_cost_usd
        if reported is None:
            return False
        if self.catalog_cost_usd == 0:
            return reported != 0
        return abs(reported - self.catalog_cost_usd) > self.catalog_cost_usd * MISMATCH_TOLERANCE

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {}
        for name, value in ((f.name, getattr(self, f.name)) for f in fields(self)):
            data[name] = value.isoformat() if isinstance(value, datetime) else (
                str(value) if isinstance(value, Decimal) else value)
        return data


COLUMNS = [f.name for f in fields(ChargeRecord) if f.name != "at"]


@dataclass(frozen=True, slots=True)
class ChargePage:
    """One page of the charge log, and where the next one starts."""

    records: list[ChargeRecord]
    has_more: bool
    """More charges were logged after this page's last when it was read."""
    next_after: str | None
    """The position to read on from (``after``): the last record's, or, on an empty page, the
    ``after`` it was read with; None when neither is known. Given even when ``has_more`` is false,
    so a caller can come back later for the charges logged since."""


def _decimal_text(value: object) -> str:
    """A decimal as its exact text, for orjson (which calls this for the types it lacks)."""
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"a charge record holds no {type(value).__name__}")


def to_csv(records: Iterable[ChargeRecord], *, header: bool = True) -> str:
    """The records as CSV, the time first; empty cells for what is unknown. Without ``header``:
    the rows alone, to follow an earlier page's."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(["at", *COLUMNS])
    for record in records:
        row = record.to_json()
        writer.writerow(["" if row[name] is None else row[name] for name in ["at", *COLUMNS]])
    return out.getvalue()
