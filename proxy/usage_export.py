"""``boltgate usage export``: the charge log from the state store the settings name, as CSV or
JSON lines, for checking a vendor's invoice (vendor request id, catalog cost, vendor-reported
cost, client price per charge): all of it from ``since`` on, read from the store a page at a time
and written out page by page, so that its memory is one page's, however long the log (a year of
charges is millions of lines).

It opens the store itself (the SQLite file under ``data_dir`` or Redis), so it runs beside a
serving gateway, or after it stopped.
"""

from __future__ import annotations

from typing import Protocol

import orjson

from pricing.charge_log import ChargeRecord, to_csv
from pricing.ledger import Ledger
from proxy.api.charges import parse_since
from proxy.settings import Settings
from proxy.wiring import build_stores


class TextOutput(Protocol):
    """Where the export writes (``sys.stdout``, a file, a pipe)."""

    def write(self, text: str, /) -> object: ...


PAGE_SIZE = 10_000
"""Charges read from the store, and written out, at a time."""


async def export_charges(settings: Settings, since: str | None, output_format: str, out: TextOutput, *,
                         page_size: int = PAGE_SIZE) -> None:
    """Write the charges from ``since`` (ISO 8601; default: this month) to ``out`` as ``csv`` or
    ``jsonl``, each page before the next is read. A store that fails part way leaves the pages
    before it written (and raises)."""
    if settings.state_backend == "memory":
        raise ValueError("state_backend=memory keeps no charge log outside the serving process; "
                         "use the admin API (GET /v1/admin/charges) instead")
    stores = build_stores(settings)
    try:
        ledger = Ledger(stores.book, stores.durable, settings.pricing.credit_usd)
        first = True
        async for page in ledger.charge_pages(parse_since(since), page_size=page_size):
            out.write(to_csv(page, header=first) if output_format == "csv" else _json_lines(page))
            first = False
    finally:
        await stores.aclose()


def _json_lines(records: list[ChargeRecord]) -> str:
    return "".join(orjson.dumps(record.to_json()).decode() + "\n" for record in records)
