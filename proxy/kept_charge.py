"""A request's charge written down exactly, to be read back by another run or another process.

Two readers need a charge after the run that made it is gone: a job's run again after the run
that was charged was lost (``proxy.jobs.runner``: written in the job's record before the settle is
sent), and the next start of a gateway killed while it owed a void (``proxy.owed_voids``). Either
may have to take exactly that charge back (``Billing.void``: the settle's amount, tallies and
charge-log entry negated), so this keeps all of a ``PendingCharge``, every decimal as its exact
text.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import orjson

from core.state.ledger_store import Tally
from pricing.charge_log import ChargeRecord
from pricing.ledger import Reservation, Settlement
from pricing.quote import DisplayAmount, Quote
from proxy.billing import Charge, PendingCharge


def kept_charge_json(pending: PendingCharge) -> bytes:
    charge, settlement = pending.charge, pending.settlement
    quote, reservation = charge.quote, settlement.reservation
    return orjson.dumps({
        "quote": {
            "vendor": quote.vendor, "images": quote.images, "upstream_usd": quote.upstream_usd,
            "client_usd": quote.client_usd, "credits": quote.credits, "estimated": quote.estimated,
            "seconds": quote.seconds,
            "display": None if quote.display is None else [quote.display.currency, quote.display.amount],
        },
        "overrun_usd": charge.overrun_usd,
        "reservation": {
            "api_key": reservation.api_key, "reservation_id": reservation.reservation_id,
            "limit": reservation.limit, "budget_credits": reservation.budget_credits,
            "micro_usd": reservation.micro_usd,
        },
        "micro_usd": settlement.micro_usd,
        "vendor": settlement.vendor,
        "tallies": [[tally.table, tally.field, tally.amount] for tally in settlement.tallies],
        "record": None if settlement.record is None else orjson.loads(settlement.record.to_entry()),
    }, default=_decimal_text)


def kept_charge_from_json(raw: bytes) -> PendingCharge:
    """The charge ``kept_charge_json`` wrote; ``ValueError`` for anything else."""
    return kept_charge_from_fields(orjson.loads(raw))


def kept_charge_from_fields(data: Any) -> PendingCharge:
    """``kept_charge_from_json`` of JSON already parsed (the charge inside a larger document).
    Whatever is wrong with it (a field missing or of another type, an amount that is no number:
    ``Decimal``'s error is an ``ArithmeticError``) is one ``ValueError``, the one error its
    readers catch: what they read was written by a process that may have been killed mid-write."""
    try:
        return _from_fields(data)
    except (KeyError, TypeError, IndexError, ArithmeticError) as error:
        raise ValueError(f"not a kept charge: {type(error).__name__}: {error}") from error


def _from_fields(data: Any) -> PendingCharge:
    quoted = data["quote"]
    display = quoted["display"]
    quote = Quote(
        vendor=quoted["vendor"], images=quoted["images"], upstream_usd=Decimal(quoted["upstream_usd"]),
        client_usd=Decimal(quoted["client_usd"]), credits=Decimal(quoted["credits"]),
        estimated=quoted["estimated"], seconds=_decimal(quoted["seconds"]),
        display=None if display is None else DisplayAmount(display[0], Decimal(display[1])),
    )
    held = data["reservation"]
    reservation = Reservation(held["api_key"], held["reservation_id"], held["limit"],
                              _decimal(held["budget_credits"]), held["micro_usd"])
    record = data["record"]
    settlement = Settlement(
        reservation, data["micro_usd"], data["vendor"],
        tuple(Tally(table, field, amount) for table, field, amount in data["tallies"]),
        None if record is None else replace(ChargeRecord.from_entry(orjson.dumps(record), 0.0), at=None),
    )
    return PendingCharge(Charge(quote, Decimal(data["overrun_usd"])), settlement)


def _decimal(text: Any) -> Decimal | None:
    return None if text is None else Decimal(text)


def _decimal_text(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"a kept charge holds no {type(value).__name__}")
