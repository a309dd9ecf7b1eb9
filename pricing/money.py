"""Exact money: USD as ``Decimal``, rounded once, stored as integer micro-USD.

The rounding rule: an amount of USD is rounded **half up** (away from zero on a tie) to **6
decimal places**, once, at the end of each quote. Half up rather than Python's default
banker's rounding so a price is what a person computing it by hand would get
(``0.0000125`` -> ``0.000013``, where banker's rounding gives ``0.000012``). Six places make
one micro-USD the smallest unit, which is what the state store keeps (integers add atomically).
Credits are ``USD / credit_usd``, rounded half up to 4 places.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

USD_QUANTUM = Decimal("0.000001")
CREDIT_QUANTUM = Decimal("0.0001")
DISPLAY_QUANTUM = Decimal("0.0001")
"""Display amounts keep 4 places: a tenth of a cent in INR is still visible on a cheap image."""


def round_usd(amount: Decimal) -> Decimal:
    """Round half up to 6 decimal places (the one rounding rule of boltgate's prices)."""
    return amount.quantize(USD_QUANTUM, rounding=ROUND_HALF_UP)


def format_usd(amount: Decimal) -> str:
    """The text for headers and reports: always 6 places, no exponent (``"0.054000"``)."""
    return f"{round_usd(amount):f}"


def to_micro_usd(amount: Decimal) -> int:
    """Integer micro-USD for the state store (rounded by ``round_usd`` first)."""
    return int(round_usd(amount).scaleb(6))


def from_micro_usd(micros: int) -> Decimal:
    """The exact USD amount of ``micros`` micro-USD, with 6 places (``54000`` -> ``0.054000``)."""
    return Decimal(micros).scaleb(-6).quantize(USD_QUANTUM)


def to_credits(amount_usd: Decimal, credit_usd: Decimal) -> Decimal:
    """USD to credits, rounded half up to 4 places."""
    return (amount_usd / credit_usd).quantize(CREDIT_QUANTUM, rounding=ROUND_HALF_UP)


def credits_to_usd(credits: Decimal, credit_usd: Decimal) -> Decimal:
    """Credits to USD, rounded by the USD rule."""
    return round_usd(credits * credit_usd)


def to_display(amount_usd: Decimal, rate: Decimal) -> Decimal:
    """USD in the display currency at a fixed ``rate``, rounded half up to 4 places."""
    return (amount_usd * rate).quantize(DISPLAY_QUANTUM, rounding=ROUND_HALF_UP)
