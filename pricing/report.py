"""The text of ``boltgate prices``: every vendor's price and what a client pays for one image."""

from __future__ import annotations

from core.request import ImageRequest
from pricing.catalog import PriceCatalog
from pricing.config import PricingConfig
from pricing.money import format_usd
from pricing.vendor_price import VendorPrice

REFERENCE_REQUEST = ImageRequest(prompt="price of one reference image", n=1, width=1024, height=1024, steps=4, seed=0)
"""One 1024x1024 4-step image: the request every row of the table is priced for."""

UNIT_TEXT = {"image": "image", "second": "second", "gpu_second": "GPU-second"}


def _price_cells(price: VendorPrice) -> list[str]:
    """Unit, unit price, time estimate and what the price follows, for one row."""
    seconds = price.estimated_seconds_per_image if price.charges_by_time else None
    scales = [
        name for name, flag in (("megapixels", price.scale_with_megapixels), ("steps", price.scale_with_steps)) if flag
    ]
    return [
        UNIT_TEXT[price.unit],
        f"${price.price_usd:f}",
        "-" if seconds is None else f"{seconds:f}",
        "+".join(scales) or "-",
    ]


def render_price_table(catalog: PriceCatalog, config: PricingConfig) -> str:
    """A plain-text table, one row per vendor, followed by the rules that produced it."""
    headers = ["vendor", "unit", "unit price", "est. s/image", "scales with", "upstream", "client", "credits"]
    if config.display_currency is not None:
        headers.append(config.display_currency)
    rows = [headers]
    for price in catalog:
        quote = catalog.quote(price.vendor, REFERENCE_REQUEST)
        row = [
            price.vendor,
            *_price_cells(price),
            f"${format_usd(quote.upstream_usd)}",
            f"${format_usd(quote.client_usd)}",
            f"{quote.credits:f}",
        ]
        if quote.display is not None:
            row.append(f"{quote.display.amount:f}")
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    overrides = ", ".join(f"{v} {pct:f}%" for v, pct in sorted(config.vendor_markup_pct.items()))
    lines += [
        "",
        "Prices for one 1024x1024 image in 4 steps, USD, rounded half up to 6 places.",
        f"Markup {config.markup_pct:f}%"
        + (f" (overrides: {overrides})" if overrides else "")
        + f"; minimum ${format_usd(config.min_price_per_image_usd)} per image;"
        + f" 1 credit = ${config.credit_usd:f}.",
    ]
    if config.display_currency is not None and config.display_rate is not None:
        lines.append(f"Display: 1 USD = {config.display_rate:f} {config.display_currency} (fixed).")
    return "\n".join(lines) + "\n"
