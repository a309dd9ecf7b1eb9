"""PricingConfig: defaults that serve one machine, exact decimals, and nesting into settings."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from pricing.config import KeyPolicy, PricingConfig, VendorPriceOverride


class GatewaySettings(BaseSettings):
    """How the gateway nests the pricing config (``BOLTGATE_PRICING__...``)."""

    model_config = SettingsConfigDict(env_prefix="BOLTGATE_", env_nested_delimiter="__")

    pricing: PricingConfig = PricingConfig()


def test_defaults() -> None:
    config = PricingConfig()
    assert config.markup_pct == Decimal("35")
    assert config.credit_usd == Decimal("0.01")
    assert config.min_price_per_image_usd == Decimal("0.001")
    assert config.display_currency is None
    assert config.catalog_path is None
    assert config.vendor_prices == {}


def test_markup_for_prefers_the_vendor_override() -> None:
    config = PricingConfig(markup_pct=Decimal("20"), vendor_markup_pct={"local": Decimal("50")})
    assert config.markup_for("local") == Decimal("50")
    assert config.markup_for("runflow") == Decimal("20")


def test_float_inputs_become_the_decimal_they_read_as() -> None:
    config = PricingConfig.model_validate_json(
        '{"credit_usd": 0.01, "vendor_prices": {"imageapi": {"price_usd": 0.002}}}'
    )
    assert config.credit_usd == Decimal("0.01")
    assert config.vendor_prices["imageapi"].price_usd == Decimal("0.002")


def test_display_currency_and_rate_go_together() -> None:
    with pytest.raises(ValidationError, match="display_currency and display_rate"):
        PricingConfig(display_currency="INR")
    with pytest.raises(ValidationError, match="display_currency and display_rate"):
        PricingConfig(display_rate=Decimal("84"))
    assert PricingConfig(display_currency="INR", display_rate=Decimal("84.0")).display_rate == Decimal("84.0")


@pytest.mark.parametrize(
    "fields",
    [
        {"markup_pct": Decimal("-1")},
        {"credit_usd": Decimal("0")},
        {"min_price_per_image_usd": Decimal("-0.01")},
        {"vendor_markup_pct": {"local": Decimal("-5")}},
        {"display_currency": "INR", "display_rate": Decimal("0")},
        {"surprise": 1},
    ],
)
def test_nonsense_is_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        PricingConfig.model_validate(fields)


def test_a_vendor_override_refuses_unknown_fields_and_negative_prices() -> None:
    with pytest.raises(ValidationError):
        VendorPriceOverride.model_validate({"price": "0.01"})
    with pytest.raises(ValidationError):
        VendorPriceOverride(price_usd=Decimal("-0.01"))


@pytest.mark.parametrize("name", ["two\nlines", "nul\u0000", "line\u2028separator"])
def test_a_key_written_in_config_is_refused_a_name_the_admin_api_would_refuse(name: str) -> None:
    """Names reach log lines, CSV exports and metric labels, however the key came to be."""
    with pytest.raises(ValidationError, match="a key name may not hold a control character"):
        KeyPolicy(name=name)
    assert KeyPolicy(name="équipe 团队").name == "équipe 团队"


def test_nests_into_the_gateway_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOLTGATE_PRICING__MARKUP_PCT", "40")
    monkeypatch.setenv("BOLTGATE_PRICING__CREDIT_USD", "0.05")
    monkeypatch.setenv("BOLTGATE_PRICING__VENDOR_PRICES", '{"imageapi": {"price_usd": "0.0025"}}')
    settings = GatewaySettings()
    assert settings.pricing.markup_pct == Decimal("40")
    assert settings.pricing.credit_usd == Decimal("0.05")
    assert settings.pricing.vendor_prices["imageapi"].price_usd == Decimal("0.0025")
