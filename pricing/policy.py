"""Price-based route choices for the router: cheapest first, and the client's price ceiling."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TypeVar

T = TypeVar("T")


def order_by_price(candidates: Sequence[T], price_of: Callable[[T], Decimal]) -> list[T]:
    """Cheapest first; equal prices keep their given order (the router's own preference)."""
    return sorted(candidates, key=price_of)


def split_by_ceiling(
    candidates: Sequence[T], price_of: Callable[[T], Decimal], ceiling: Decimal | None
) -> tuple[list[T], list[T]]:
    """``(within, above)``: candidates priced at most ``ceiling``, and the rest, order kept.

    ``ceiling=None`` (the client set no ``max_price_usd``) lets every candidate through. A
    price equal to the ceiling is within it.
    """
    if ceiling is None:
        return list(candidates), []
    within: list[T] = []
    above: list[T] = []
    for candidate in candidates:
        (within if price_of(candidate) <= ceiling else above).append(candidate)
    return within, above


def within_ceiling(candidates: Sequence[T], price_of: Callable[[T], Decimal], ceiling: Decimal | None) -> list[T]:
    """The candidates a client's ``max_price_usd`` allows (all of them when it is None)."""
    return split_by_ceiling(candidates, price_of, ceiling)[0]
