"""PriceCatalog: the packaged seed prices, overrides from a file and inline config, lookups."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from core.errors import CatalogError, ConfigurationError, UnknownVendor
from core.request import ImageRequest
from pricing.catalog import PriceCatalog, VendorPrice
from pricing.config import PricingConfig, VendorPriceOverride

SEED = {
    "callmissed": ("image", "0.04"),
    "runflow": ("image", "0.003"),
    "eachlabs": ("second", "0.00154"),
    "imageapi": ("image", "0.002"),
    "aigateway": ("image", "0.0008"),
    "local": ("gpu_second", "0.0007"),
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prices.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_packaged_catalog_holds_the_seed_prices_as_exact_decimals() -> None:
    catalog = PriceCatalog.load()
    assert catalog.vendors() == list(SEED)
    for vendor, (unit, price) in SEED.items():
        entry = catalog.price(vendor)
        assert (entry.unit, entry.price_usd) == (unit, Decimal(price))
        assert type(entry.price_usd) is Decimal
    assert catalog.price("eachlabs").estimated_seconds_per_image == Decimal("2.0")
    assert catalog.price("local").estimated_seconds_per_image == Decimal("1.0")
    assert catalog.price("runflow").scale_with_megapixels is False


def test_quotes_the_seed_prices_with_the_default_markup(image_request: ImageRequest) -> None:
    catalog = PriceCatalog.load()
    client = {vendor: catalog.quote(vendor, image_request).client_usd for vendor in catalog.vendors()}
    assert client == {
        "callmissed": Decimal("0.054000"),
        "runflow": Decimal("0.004050"),
        "eachlabs": Decimal("0.004158"),
        "imageapi": Decimal("0.002700"),
        "aigateway": Decimal("0.001080"),
        "local": Decimal("0.001000"),  # 0.000945 raised to the minimum per image
    }


def test_eachlabs_is_billed_from_the_reported_run_time(image_request: ImageRequest) -> None:
    bill = PriceCatalog.load().quote("eachlabs", image_request, run_seconds=Decimal("2.5"))
    assert bill.upstream_usd == Decimal("0.003850")
    assert bill.estimated is False


def test_an_unknown_vendor_is_a_configuration_error_naming_it(image_request: ImageRequest) -> None:
    catalog = PriceCatalog.load()
    with pytest.raises(UnknownVendor, match="'nowhere'") as raised:
        catalog.quote("nowhere", image_request)
    assert isinstance(raised.value, ConfigurationError)
    assert raised.value.vendor == "nowhere"
    assert "callmissed" in str(raised.value)
    assert "nowhere" not in catalog
    assert "runflow" in catalog


def test_a_catalog_file_overrides_fields_and_adds_vendors(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[vendors.runflow]
price_usd = 0.0025

[vendors.gpu-farm]
unit = "second"
price_usd = 0.0011
estimated_seconds_per_image = 1.5
""",
    )
    catalog = PriceCatalog.load(PricingConfig(catalog_path=path))
    assert catalog.price("runflow") == VendorPrice("runflow", "image", Decimal("0.0025"))
    assert catalog.price("gpu-farm").estimated_seconds_per_image == Decimal("1.5")
    assert catalog.price("callmissed").price_usd == Decimal("0.04")
    assert catalog.vendors()[-1] == "gpu-farm"


def test_inline_config_wins_over_the_file(tmp_path: Path, image_request: ImageRequest) -> None:
    path = write(tmp_path, '[vendors.imageapi]\nprice_usd = "0.004"\n')
    config = PricingConfig(
        catalog_path=path, vendor_prices={"imageapi": VendorPriceOverride(price_usd=Decimal("0.003"))}
    )
    catalog = PriceCatalog.load(config)
    assert catalog.price("imageapi").price_usd == Decimal("0.003")
    assert catalog.quote("imageapi", image_request).client_usd == Decimal("0.004050")


def test_inline_config_can_turn_on_scaling_for_one_vendor(image_request: ImageRequest) -> None:
    config = PricingConfig(vendor_prices={"runflow": VendorPriceOverride(scale_with_steps=True)})
    catalog = PriceCatalog.load(config)
    eight_steps = image_request.model_copy(update={"steps": 8})
    assert catalog.quote("runflow", eight_steps).upstream_usd == Decimal("0.006000")
    assert catalog.quote("callmissed", eight_steps).upstream_usd == Decimal("0.040000")


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("[vendors.newcomer]\nprice_usd = 0.01\n", "give unit and price_usd"),
        ('[vendors.runflow]\nunit = "second"\n', "estimated_seconds_per_image"),
        ("[vendors.runflow]\nprice = 0.01\n", "vendors.runflow"),
        ('[vendors.runflow]\nunit = "minute"\n', "vendors.runflow"),
        ("vendors = 3\n", "table"),
        ("[vendors.runflow\n", "prices.toml"),
    ],
)
def test_a_bad_catalog_file_is_a_catalog_error(tmp_path: Path, text: str, complaint: str) -> None:
    with pytest.raises(CatalogError, match=complaint):
        PriceCatalog.load(PricingConfig(catalog_path=write(tmp_path, text)))


def test_a_missing_catalog_file_is_a_catalog_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read"):
        PriceCatalog.load(PricingConfig(catalog_path=tmp_path / "absent.toml"))


def test_an_estimate_is_kept_for_requests_alike_in_their_priced_fields() -> None:
    catalog = PriceCatalog.load(PricingConfig(vendor_prices={
        "eachlabs": VendorPriceOverride(scale_with_megapixels=True, scale_with_steps=True)}))
    first = ImageRequest(prompt="a fox", width=512, height=768, steps=8, seed=1)
    alike = ImageRequest(prompt="another fox", width=512, height=768, steps=8, seed=2, negative_prompt="blur")
    assert catalog.quote("eachlabs", alike) is catalog.quote("eachlabs", first)
    assert catalog.quote("eachlabs", first, images=0).images == 0  # the images asked for are part of the key
    for other in (first.model_copy(update={"steps": 4}), first.model_copy(update={"width": 1024}),
                  first.model_copy(update={"height": 1024}), first.model_copy(update={"n": 2})):
        assert catalog.quote("eachlabs", other) != catalog.quote("eachlabs", first)
    billed = catalog.quote("eachlabs", first, run_seconds=Decimal("3.50"))
    assert billed.seconds == Decimal("3.50") and str(billed.seconds) == "3.50"  # reported times are not kept

