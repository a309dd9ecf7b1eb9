"""The money rules: half-up rounding at 6 places, exact micro-USD, credits and display amounts."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import pytest

from pricing.money import (
    credits_to_usd,
    format_usd,
    from_micro_usd,
    round_usd,
    to_credits,
    to_display,
    to_micro_usd,
)


def test_a_tie_rounds_up_where_bankers_rounding_would_round_down() -> None:
    tie = Decimal("0.0000125")
    assert tie.quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN) == Decimal("0.000012")
    assert round_usd(tie) == Decimal("0.000013")


@pytest.mark.parametrize(
    ("amount", "rounded"),
    [
        ("0.0000124999", "0.000012"),
        ("0.0000135", "0.000014"),
        ("0.0000005", "0.000001"),
        ("0.0000004999", "0.000000"),
        ("1.2345675", "1.234568"),
        ("-0.0000125", "-0.000013"),
    ],
)
def test_round_usd_keeps_six_places_half_up(amount: str, rounded: str) -> None:
    assert round_usd(Decimal(amount)) == Decimal(rounded)
    assert round_usd(Decimal(amount)).as_tuple().exponent == -6


@pytest.mark.parametrize(
    ("amount", "text"),
    [("0.054", "0.054000"), ("1E+2", "100.000000"), ("5E-7", "0.000001"), ("0", "0.000000")],
)
def test_format_usd_always_shows_six_places_and_no_exponent(amount: str, text: str) -> None:
    assert format_usd(Decimal(amount)) == text


def test_micro_usd_round_trips_exactly() -> None:
    assert to_micro_usd(Decimal("0.054")) == 54_000
    assert to_micro_usd(Decimal("12.3456785")) == 12_345_679
    assert from_micro_usd(54_000) == Decimal("0.054")
    assert str(from_micro_usd(54_000)) == "0.054000"
    assert from_micro_usd(to_micro_usd(Decimal("0.004158"))) == Decimal("0.004158")
    assert to_micro_usd(Decimal("-0.000002")) == -2


def test_credits_are_usd_over_the_credit_value_rounded_half_up_to_four_places() -> None:
    assert to_credits(Decimal("0.054"), Decimal("0.01")) == Decimal("5.4000")
    assert to_credits(Decimal("0.0000125"), Decimal("0.01")) == Decimal("0.0013")
    assert to_credits(Decimal("1"), Decimal("0.03")) == Decimal("33.3333")
    assert credits_to_usd(Decimal("100"), Decimal("0.01")) == Decimal("1.000000")


def test_display_amount_uses_the_fixed_rate() -> None:
    assert to_display(Decimal("0.054"), Decimal("84.0")) == Decimal("4.5360")
    assert to_display(Decimal("0.001080"), Decimal("84")) == Decimal("0.0907")
