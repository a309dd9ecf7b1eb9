"""The quote arithmetic: exact decimals, markup, the per-image floor, one rounding at the end."""

from __future__ import annotations

from dataclasses import fields
from decimal import ROUND_HALF_EVEN, Decimal

import pytest

from core.request import ImageRequest
from pricing.config import PricingConfig
from pricing.quote import DisplayAmount, compute_quote, priced_fields
from pricing.vendor_price import VendorPrice

CALLMISSED = VendorPrice("callmissed", "image", Decimal("0.04"))
AIGATEWAY = VendorPrice("aigateway", "image", Decimal("0.0008"))
EACHLABS = VendorPrice("eachlabs", "second", Decimal("0.00154"), Decimal("2.0"), True, True)
LOCAL = VendorPrice("local", "gpu_second", Decimal("0.0007"), Decimal("1.0"), True, True)
NO_FLOOR = PricingConfig(min_price_per_image_usd=Decimal("0"))


def request(**fields: object) -> ImageRequest:
    return ImageRequest.model_validate({"prompt": "a red fox", **fields})


def test_per_image_price_times_images_plus_markup() -> None:
    quote = compute_quote(CALLMISSED, PricingConfig(), request(n=3))
    assert quote.vendor == "callmissed"
    assert quote.images == 3
    assert quote.upstream_usd == Decimal("0.120000")
    assert quote.client_usd == Decimal("0.162000")
    assert quote.credits == Decimal("16.2000")
    assert quote.estimated is False
    assert quote.seconds is None


def test_per_second_vendor_is_estimated_until_the_run_time_is_known() -> None:
    estimate = compute_quote(EACHLABS, PricingConfig(), request())
    assert estimate.estimated is True
    assert estimate.seconds == Decimal("2.0")
    assert estimate.upstream_usd == Decimal("0.003080")
    assert estimate.client_usd == Decimal("0.004158")

    bill = compute_quote(EACHLABS, PricingConfig(), request(), run_seconds=Decimal("1.8"))
    assert bill.estimated is False
    assert bill.seconds == Decimal("1.8")
    assert bill.upstream_usd == Decimal("0.002772")  # 1.8 s x $0.00154
    assert bill.client_usd == Decimal("0.003742")  # 0.0037422 rounded


def test_gpu_seconds_estimate_scales_with_images() -> None:
    quote = compute_quote(LOCAL, NO_FLOOR, request(n=2))
    assert quote.seconds == Decimal("2.0")
    assert quote.upstream_usd == Decimal("0.001400")
    assert quote.client_usd == Decimal("0.001890")
    # $0.00189 for two images is under the default floor of $0.001 per image.
    assert compute_quote(LOCAL, PricingConfig(), request(n=2)).client_usd == Decimal("0.002000")


def test_a_reported_run_time_is_the_bill_whatever_the_image_size() -> None:
    small = compute_quote(EACHLABS, NO_FLOOR, request(width=512, height=512, steps=2), run_seconds=Decimal("3"))
    assert small.upstream_usd == Decimal("0.004620")


def test_a_per_image_vendor_ignores_run_seconds() -> None:
    quote = compute_quote(CALLMISSED, PricingConfig(), request(), run_seconds=Decimal("9"))
    assert quote.upstream_usd == Decimal("0.040000")
    assert quote.estimated is False


@pytest.mark.parametrize(("markup", "client"), [("0", "0.040000"), ("50", "0.060000"), ("12.5", "0.045000")])
def test_global_markup(markup: str, client: str) -> None:
    config = PricingConfig(markup_pct=Decimal(markup))
    assert compute_quote(CALLMISSED, config, request()).client_usd == Decimal(client)


def test_per_vendor_markup_replaces_the_global_one() -> None:
    config = PricingConfig(markup_pct=Decimal("35"), vendor_markup_pct={"callmissed": Decimal("10")})
    assert compute_quote(CALLMISSED, config, request()).client_usd == Decimal("0.044000")
    assert compute_quote(AIGATEWAY, config, request()).client_usd == Decimal("0.001080")


def test_minimum_price_per_image_is_a_floor_times_images() -> None:
    config = PricingConfig(min_price_per_image_usd=Decimal("0.002"))
    floored = compute_quote(AIGATEWAY, config, request(n=2))
    assert floored.upstream_usd == Decimal("0.001600")
    assert floored.client_usd == Decimal("0.004000")
    assert compute_quote(CALLMISSED, config, request(n=2)).client_usd == Decimal("0.108000")


def test_rounding_is_half_up_not_bankers() -> None:
    tiny = VendorPrice("tiny", "image", Decimal("0.00001"))
    config = PricingConfig(markup_pct=Decimal("25"), min_price_per_image_usd=Decimal("0"))
    quote = compute_quote(tiny, config, request())
    exact = Decimal("0.0000125")
    assert exact.quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN) == Decimal("0.000012")
    assert quote.client_usd == Decimal("0.000013")


def test_rounding_happens_once_at_the_end_not_on_the_upstream_cost_first() -> None:
    cheap = VendorPrice("cheap", "second", Decimal("0.000001"), Decimal("1"))
    quote = compute_quote(cheap, NO_FLOOR, request(), run_seconds=Decimal("0.4"))
    assert quote.upstream_usd == Decimal("0.000000")  # 0.0000004
    assert quote.client_usd == Decimal("0.000001")  # 0.00000054, not 1.35 x 0


def test_credits_follow_the_credit_value() -> None:
    config = PricingConfig(credit_usd=Decimal("0.03"))
    assert compute_quote(CALLMISSED, config, request()).credits == Decimal("1.8000")
    config = PricingConfig(credit_usd=Decimal("0.07"))
    assert compute_quote(CALLMISSED, config, request()).credits == Decimal("0.7714")  # 0.771428...


def test_display_currency_at_a_fixed_rate() -> None:
    config = PricingConfig(display_currency="INR", display_rate=Decimal("84.0"))
    quote = compute_quote(CALLMISSED, config, request())
    assert quote.display == DisplayAmount("INR", Decimal("4.5360"))
    assert str(quote.display) == "INR 4.5360"
    assert compute_quote(CALLMISSED, PricingConfig(), request()).display is None


def test_a_small_fast_image_costs_less_than_a_large_slow_one_where_the_vendor_scales() -> None:
    small = request(width=512, height=512, steps=2)
    large = request(width=1280, height=1280, steps=8)
    for vendor in (LOCAL, EACHLABS):
        cheap = compute_quote(vendor, NO_FLOOR, small)
        dear = compute_quote(vendor, NO_FLOOR, large)
        assert cheap.client_usd < dear.client_usd
    assert compute_quote(LOCAL, NO_FLOOR, small).seconds == Decimal("0.1250")
    assert compute_quote(LOCAL, NO_FLOOR, large).upstream_usd == Decimal("0.002188")  # 3.125 s


def test_an_unflagged_vendor_charges_the_same_for_any_size_or_steps() -> None:
    small = compute_quote(CALLMISSED, PricingConfig(), request(width=512, height=512, steps=2))
    large = compute_quote(CALLMISSED, PricingConfig(), request(width=1280, height=1280, steps=8))
    assert small.client_usd == large.client_usd == Decimal("0.054000")


def test_a_per_image_vendor_flagged_to_scale_scales_its_price() -> None:
    runflow = VendorPrice("runflow", "image", Decimal("0.003"), scale_with_megapixels=True)
    quote = compute_quote(runflow, NO_FLOOR, request(width=512, height=512))
    assert quote.upstream_usd == Decimal("0.000750")
    assert quote.estimated is False


def test_zero_images_charge_the_client_nothing_but_keep_the_upstream_cost() -> None:
    failed = compute_quote(EACHLABS, PricingConfig(), request(), run_seconds=Decimal("2"), images=0)
    assert failed.images == 0
    assert failed.client_usd == Decimal("0.000000")
    assert failed.credits == Decimal("0.0000")
    assert failed.upstream_usd == Decimal("0.003080")


def test_images_overrides_the_request_count() -> None:
    assert compute_quote(CALLMISSED, PricingConfig(), request(n=4), images=1).upstream_usd == Decimal("0.04")


def test_negative_images_or_run_time_are_refused() -> None:
    with pytest.raises(ValueError, match="images"):
        compute_quote(CALLMISSED, PricingConfig(), request(), images=-1)
    with pytest.raises(ValueError, match="run_seconds"):
        compute_quote(EACHLABS, PricingConfig(), request(), run_seconds=Decimal("-1"))


def test_every_amount_is_a_decimal() -> None:
    config = PricingConfig(display_currency="INR", display_rate=Decimal("84"))
    quote = compute_quote(EACHLABS, config, request())
    for field in ("upstream_usd", "client_usd", "credits", "seconds"):
        assert type(getattr(quote, field)) is Decimal
    assert quote.display is not None
    assert type(quote.display.amount) is Decimal
    assert not any(isinstance(getattr(quote, f.name), float) for f in fields(quote))


def test_long_prices_are_not_rounded_before_the_end() -> None:
    # 35 significant digits: the default 28-digit context would round this up to 0.0000015 first.
    precise = VendorPrice("precise", "image", Decimal("0.0000014999999999999999999999999999"))
    config = PricingConfig(markup_pct=Decimal("0"), min_price_per_image_usd=Decimal("0"))
    assert compute_quote(precise, config, request()).client_usd == Decimal("0.000001")


class OnlyPricedFields:
    """A request reduced to what ``priced_fields`` names: a quote reading anything else fails."""

    def __init__(self, full: ImageRequest) -> None:
        self.n, self.width, self.height, self.steps = priced_fields(full)


@pytest.mark.parametrize("price", [CALLMISSED, AIGATEWAY, EACHLABS, LOCAL], ids=lambda price: price.vendor)
@pytest.mark.parametrize("run_seconds", [None, Decimal("3.5")])
def test_a_quote_reads_nothing_of_the_request_but_its_priced_fields(
    price: VendorPrice, run_seconds: Decimal | None
) -> None:
    """What lets ``PriceCatalog`` keep its estimates by these fields alone."""
    full = request(n=2, width=768, height=512, steps=8, seed=3, negative_prompt="blur", guidance_scale=2.0)
    config = PricingConfig(display_currency="EUR", display_rate=Decimal("0.9"))
    reduced = OnlyPricedFields(full)
    assert compute_quote(price, config, reduced, run_seconds=run_seconds) == compute_quote(  # type: ignore[arg-type]
        price, config, full, run_seconds=run_seconds)
