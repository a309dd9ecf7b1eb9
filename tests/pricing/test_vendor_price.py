"""VendorPrice: a vendor's price as checked data, and the work a request represents."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.request import ImageRequest
from pricing.vendor_price import VendorPrice


def scaled(megapixels: bool, steps: bool) -> VendorPrice:
    return VendorPrice(
        "v", "second", Decimal("0.001"), Decimal("1"), scale_with_megapixels=megapixels, scale_with_steps=steps
    )


def test_a_time_based_price_needs_a_time_estimate() -> None:
    with pytest.raises(ValueError, match="estimated_seconds_per_image"):
        VendorPrice("eachlabs", "second", Decimal("0.00154"))
    with pytest.raises(ValueError, match="estimated_seconds_per_image"):
        VendorPrice("local", "gpu_second", Decimal("0.0007"), Decimal("0"))
    assert VendorPrice("runflow", "image", Decimal("0.003")).charges_by_time is False


def test_a_price_is_never_negative_and_the_unit_is_known() -> None:
    with pytest.raises(ValueError, match="price_usd"):
        VendorPrice("runflow", "image", Decimal("-0.003"))
    with pytest.raises(ValueError, match="unit"):
        VendorPrice("runflow", "minute", Decimal("0.003"))  # type: ignore[arg-type]


def test_work_is_exact_and_relative_to_1024_square_and_four_steps() -> None:
    small = ImageRequest(prompt="p", width=512, height=512, steps=2)
    large = ImageRequest(prompt="p", width=1280, height=1280, steps=8)
    reference = ImageRequest(prompt="p")
    both = scaled(megapixels=True, steps=True)
    assert both.work_factor(small) == Decimal("0.125")
    assert both.work_factor(large) == Decimal("3.125")
    assert both.work_factor(reference) == Decimal("1")
    assert both.work_factor(ImageRequest(prompt="p", width=1016, height=1024)) == Decimal("0.9921875")


def test_only_the_flagged_dimensions_count() -> None:
    small = ImageRequest(prompt="p", width=512, height=512, steps=2)
    assert scaled(megapixels=True, steps=False).work_factor(small) == Decimal("0.25")
    assert scaled(megapixels=False, steps=True).work_factor(small) == Decimal("0.5")
    assert scaled(megapixels=False, steps=False).work_factor(small) == Decimal("1")
