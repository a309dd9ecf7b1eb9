"""One vendor's price as data: how it charges, how much, and whether the price follows the work."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import get_args

from core.request import ImageRequest
from pricing.config import PriceUnit

REFERENCE_PIXELS = Decimal(1024 * 1024)
"""Catalog prices and time estimates are for a 1024x1024 image..."""
REFERENCE_STEPS = Decimal(4)
"""...generated in 4 steps (SDXL-Lightning's native recipe)."""


@dataclass(frozen=True, slots=True)
class VendorPrice:
    """What ``vendor`` charges boltgate for one ``unit``, in USD."""

    vendor: str
    unit: PriceUnit
    price_usd: Decimal
    estimated_seconds_per_image: Decimal | None = None
    """For time-based units: the run time assumed before the vendor reports the real one."""
    scale_with_megapixels: bool = False
    scale_with_steps: bool = False

    def __post_init__(self) -> None:
        if self.unit not in get_args(PriceUnit):
            raise ValueError(f"{self.vendor}: unknown price unit {self.unit!r}")
        if self.price_usd < 0:
            raise ValueError(f"{self.vendor}: price_usd must be >= 0")
        seconds = self.estimated_seconds_per_image
        if self.charges_by_time and (seconds is None or seconds <= 0):
            raise ValueError(f"{self.vendor}: a {self.unit} price needs estimated_seconds_per_image > 0")

    @property
    def charges_by_time(self) -> bool:
        return self.unit != "image"

    def work_factor(self, request: ImageRequest) -> Decimal:
        """How much more (or less) work ``request`` is than a 1024x1024 4-step image, exactly.

        Only the dimensions this vendor is flagged to scale with count; an unflagged vendor
        always answers 1. Widths and heights are multiples of 8, so the quotient is a finite
        decimal and no rounding happens here.
        """
        factor = Decimal(1)
        if self.scale_with_megapixels:
            factor *= Decimal(request.width * request.height) / REFERENCE_PIXELS
        if self.scale_with_steps:
            factor *= Decimal(request.steps) / REFERENCE_STEPS
        return factor
