"""A gateway loss the state store did not book, written down so that it is booked once, later.

A loss (vendor cost no client pays: ``Billing._book_loss``) is booked in the ledger's ``losses:``
tables. When the store does not answer, the booking used to survive only as a warning log line,
and the books understated what vendors were paid. Now it is owed to the store like a void: kept by
``proxy.unconfirmed_charges`` and tried again until the store answers, and written down in the
process's journal (``proxy.owed_voids``: one file per process, taken over by the next process on
the same data directory when this one is killed).

Booked once: every loss carries its ledger event id from its first try on (``Ledger.record_loss``
counts each id once), so a try whose answer was lost, a replay of a journal whose ``paid`` line a
kill cut off, and the next process's try all book it once. A loss that has one by nature keeps it
(``undelivered:<hold id>``); one counted at every call (a hedge's loser, a billed failure, a job's
run served again) gets a random one. The ledger remembers an id ``CLOSED_TTL_S`` (7 days): a journal
left that long on a data directory no gateway started on again is past that guarantee.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

OWE_LOSS = "owe_loss"
"""The journal line's key: ``{"owe_loss": {"id", "vendor", "usd", "day"}}``."""
OWED_LOSS_FIELD = "owed_loss"
"""The structured field of the gateway's log records about a loss owed: the journal's line, for
``boltgate voids make`` to book from the logs of a pod gone with its data directory."""


@dataclass(frozen=True, slots=True)
class OwedLoss:
    """One loss as the ledger books it: the same id, amount and day at every try."""

    event_id: str
    vendor: str
    usd: Decimal
    day: str
    """The UTC date it was made, the ``losses:day_usd`` field it is tallied under."""

    @staticmethod
    def event_id_for(event_id: str | None) -> str:
        """``event_id``, or a fresh one for a loss counted at every call."""
        return event_id if event_id is not None else f"loss:{secrets.token_hex(12)}"


def owed_loss_line(loss: OwedLoss) -> bytes:
    """``loss`` as the journal writes it owed (every decimal as its exact text)."""
    return orjson.dumps({OWE_LOSS: {"id": loss.event_id, "vendor": loss.vendor, "usd": str(loss.usd),
                                    "day": loss.day}})


def owed_loss_from_fields(fields: Any) -> OwedLoss:
    """The loss an ``owe_loss`` line holds; ``KeyError``, ``TypeError`` or ``ValueError`` (an
    amount that is not a decimal) for one of another shape."""
    try:
        usd = Decimal(str(fields["usd"]))
    except InvalidOperation:
        usd = Decimal("NaN")
    if not usd.is_finite():
        raise ValueError(f"usd is not an amount: {fields['usd']!r}")
    return OwedLoss(str(fields["id"]), str(fields["vendor"]), usd, str(fields["day"]))
