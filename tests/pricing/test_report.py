"""The `boltgate prices` table: every vendor's unit price and a client's price for one image."""

from __future__ import annotations

from decimal import Decimal

from pricing.catalog import PriceCatalog
from pricing.config import PricingConfig
from pricing.report import render_price_table


def rows(text: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in text.splitlines() if line and line[0].islower()}


def test_one_row_per_vendor_with_unit_price_and_client_price() -> None:
    config = PricingConfig()
    table = rows(render_price_table(PriceCatalog.load(config), config))
    assert table["vendor"][:3] == ["vendor", "unit", "unit"]
    assert set(table) - {"vendor"} == {"callmissed", "runflow", "eachlabs", "imageapi", "aigateway", "local"}
    assert table["callmissed"] == ["callmissed", "image", "$0.04", "-", "-", "$0.040000", "$0.054000", "5.4000"]
    assert table["eachlabs"] == [
        "eachlabs",
        "second",
        "$0.00154",
        "2.0",
        "megapixels+steps",
        "$0.003080",
        "$0.004158",
        "0.4158",
    ]
    assert table["local"][1] == "GPU-second"
    assert table["local"][-2:] == ["$0.001000", "0.1000"]


def test_states_the_rules_and_shows_the_display_currency() -> None:
    config = PricingConfig(
        markup_pct=Decimal("20"),
        vendor_markup_pct={"local": Decimal("50")},
        display_currency="INR",
        display_rate=Decimal("84.0"),
    )
    text = render_price_table(PriceCatalog.load(config), config)
    assert rows(text)["callmissed"][-3:] == ["$0.048000", "4.8000", "4.0320"]
    assert "INR" in text.splitlines()[0]
    assert "Markup 20% (overrides: local 50%)" in text
    assert "1 credit = $0.01" in text
    assert "1 USD = 84.0 INR" in text
