"""Price policy helpers: cheapest first (stable) and the client's ceiling (inclusive)."""

from __future__ import annotations

from decimal import Decimal

from pricing.policy import order_by_price, split_by_ceiling, within_ceiling

PRICES = {
    "callmissed": Decimal("0.054"),
    "runflow": Decimal("0.00405"),
    "imageapi": Decimal("0.0027"),
    "eachlabs": Decimal("0.00405"),
    "local": Decimal("0.001"),
}


def test_cheapest_first_and_ties_keep_their_order() -> None:
    order = order_by_price(list(PRICES), PRICES.__getitem__)
    assert order == ["local", "imageapi", "runflow", "eachlabs", "callmissed"]
    assert order_by_price(["eachlabs", "runflow"], PRICES.__getitem__) == ["eachlabs", "runflow"]


def test_the_ceiling_lets_through_prices_up_to_and_including_it() -> None:
    within, above = split_by_ceiling(list(PRICES), PRICES.__getitem__, Decimal("0.00405"))
    assert within == ["runflow", "imageapi", "eachlabs", "local"]
    assert above == ["callmissed"]
    assert within_ceiling(list(PRICES), PRICES.__getitem__, Decimal("0.001")) == ["local"]
    assert within_ceiling(list(PRICES), PRICES.__getitem__, Decimal("0.0009")) == []


def test_no_ceiling_lets_everything_through() -> None:
    assert within_ceiling(list(PRICES), PRICES.__getitem__, None) == list(PRICES)
    assert split_by_ceiling(list(PRICES), PRICES.__getitem__, None)[1] == []
