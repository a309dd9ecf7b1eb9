"""``boltgate usage export``: the charge log from the state store the settings name, as CSV or
JSON lines, for checking a vendor's invoice (vendor request id, catalog cost, vendor-reported
cost, client price per charge): all of it from ``since`` on, read from the store a page at a time.

It opens the store itself (the SQLite file under ``data_dir`` or Redis), so it runs beside a
serving gateway, or after it stopped.
"""

from __future__ import annotations

import orjson

from pricing.charge_log import to_csv
from pricing.ledger import Ledger
from proxy.api.charges import parse_since
from proxy.settings import Settings
from proxy.wiring import build_stores


async def export_charges(settings: Settings, since: str | None, output_format: str) -> str:
    """The charges from ``since`` (ISO 8601; default: this month) as ``csv`` or ``jsonl``."""
    if settings.state_backend == "memory":
        raise ValueError("state_backend=memory keeps no charge log outside the serving process; "
                         "use the admin API (GET /v1/admin/charges) instead")
    stores = build_stores(settings)
    try:
        ledger = Ledger(stores.book, stores.durable, settings.pricing.credit_usd)
        records = [record async for record in ledger.every_charge(parse_since(since))]
    finally:
        await stores.aclose()
    if output_format == "csv":
        return to_csv(records)
    return "".join(orjson.dumps(record.to_json()).decode() + "\n" for record in records)
