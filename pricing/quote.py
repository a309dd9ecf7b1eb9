"""The price of one request on one vendor: what the vendor charges us, what the client pays.

The arithmetic, in exact decimals, rounded once at the end (half up, 6 places; see
``pricing.money``)::

    work      = (pixels / 1024^2 if scale_with_megapixels) * (steps / 4 if scale_with_steps)
    upstream  = price * images * work                                  per-image vendors
              = price * run_seconds                                    time-based, billed
              = price * estimated_seconds_per_image * images * work    time-based, estimated
    client    = max(upstream * (1 + markup / 100), min_price_per_image * images)
    credits   = client (rounded) / credit_usd, half up to 4 places

A quote for zero images (an attempt that delivered nothing) charges the client nothing while
still giving the upstream cost, which is how a billed failure becomes a gateway loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext

from core.request import ImageRequest
from pricing.config import PricingConfig
from pricing.money import round_usd, to_credits, to_display
from pricing.vendor_price import VendorPrice

HUNDRED = Decimal(100)
PRECISION = 60
"""Significant digits for the intermediate products: far more than any price needs, so nothing
is rounded before the one rounding at the end."""


@dataclass(frozen=True, slots=True)
class DisplayAmount:
    """The client price in the configured display currency (informational, never billed)."""

    currency: str
    amount: Decimal

    def __str__(self) -> str:
        return f"{self.currency} {self.amount:f}"


@dataclass(frozen=True, slots=True)
class Quote:
    """A priced request. ``estimated`` is True while a time-based vendor's run time is a guess."""

    vendor: str
    images: int
    upstream_usd: Decimal
    client_usd: Decimal
    credits: Decimal
    estimated: bool
    seconds: Decimal | None = None
    """The run time priced, for time-based vendors (estimated or reported)."""
    display: DisplayAmount | None = None


def priced_fields(request: ImageRequest) -> tuple[int, int, int, int]:
    """What of a request its price depends on: the number of images, the size and the steps
    (``_priced`` and ``VendorPrice.work_factor`` read nothing else), so requests alike in these
    are priced alike (``PriceCatalog`` keeps its estimates by them)."""
    return request.n, request.width, request.height, request.steps


def compute_quote(
    price: VendorPrice,
    config: PricingConfig,
    request: ImageRequest,
    *,
    run_seconds: Decimal | None = None,
    images: int | None = None,
) -> Quote:
    """Price ``request`` on ``price.vendor`` (see the module docstring for the formula).

    ``images`` defaults to ``request.n``. ``run_seconds`` is the vendor's reported run time for
    the whole call; None means "not known yet", so time-based vendors are estimated. Per-image
    vendors ignore it.
    """
    with localcontext(prec=PRECISION):
        return _priced(price, config, request, run_seconds=run_seconds, images=images)


def _priced(
    price: VendorPrice,
    config: PricingConfig,
    request: ImageRequest,
    *,
    run_seconds: Decimal | None,
    images: int | None,
) -> Quote:
    count = request.n if images is None else images
    if count < 0:
        raise ValueError("images must be >= 0")
    if run_seconds is not None and run_seconds < 0:
        raise ValueError("run_seconds must be >= 0")
    seconds: Decimal | None = None
    estimated = False
    if not price.charges_by_time:
        upstream = price.price_usd * count * price.work_factor(request)
    else:
        if run_seconds is None:
            assert price.estimated_seconds_per_image is not None  # checked by VendorPrice
            seconds = price.estimated_seconds_per_image * count * price.work_factor(request)
            estimated = True
        else:
            seconds = run_seconds
        upstream = price.price_usd * seconds
    client = Decimal(0)
    if count > 0:
        marked_up = upstream * (1 + config.markup_for(price.vendor) / HUNDRED)
        client = max(marked_up, config.min_price_per_image_usd * count)
    client_usd = round_usd(client)
    display = None
    if config.display_currency is not None and config.display_rate is not None:
        display = DisplayAmount(config.display_currency, to_display(client_usd, config.display_rate))
    return Quote(
        vendor=price.vendor,
        images=count,
        upstream_usd=round_usd(upstream),
        client_usd=client_usd,
        credits=to_credits(client_usd, config.credit_usd),
        estimated=estimated,
        seconds=seconds,
        display=display,
    )
