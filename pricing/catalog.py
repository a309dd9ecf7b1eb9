"""The price catalog: the packaged ``catalog.toml``, overlaid by config, and the quotes it gives.

Three layers, later ones winning field by field: the packaged catalog, the file named by
``PricingConfig.catalog_path``, then ``PricingConfig.vendor_prices``. TOML numbers are parsed
straight into ``Decimal`` so ``0.00154`` never passes through a float.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path

from pydantic import ValidationError

from core.errors import CatalogError, UnknownVendor
from core.request import ImageRequest
from pricing.config import PricingConfig, VendorPriceOverride
from pricing.quote import DisplayAmount, Quote, compute_quote, priced_fields
from pricing.vendor_price import VendorPrice

__all__ = ["DisplayAmount", "PriceCatalog", "Quote", "VendorPrice"]


def read_catalog_text(text: str, source: str) -> dict[str, VendorPriceOverride]:
    """Parse a catalog file's ``[vendors.<name>]`` tables (every field optional, as overrides)."""
    try:
        data = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{source}: {exc}") from exc
    vendors = data.get("vendors", {})
    if not isinstance(vendors, dict):
        raise CatalogError(f"{source}: 'vendors' must be a table of vendor tables")
    entries: dict[str, VendorPriceOverride] = {}
    for name, entry in vendors.items():
        try:
            entries[name] = VendorPriceOverride.model_validate(entry)
        except ValidationError as exc:
            raise CatalogError(f"{source}: vendors.{name}: {exc}") from exc
    return entries


def apply_override(vendor: str, current: VendorPrice | None, override: VendorPriceOverride) -> VendorPrice:
    """``current`` with the fields ``override`` sets; a new vendor needs a unit and a price."""
    changes = override.model_dump(exclude_none=True)
    try:
        if current is None:
            if override.unit is None or override.price_usd is None:
                raise CatalogError(f"vendor {vendor!r} is not in the catalog: give unit and price_usd")
            return VendorPrice(vendor=vendor, **changes)
        return dataclasses.replace(current, **changes)
    except ValueError as exc:
        raise CatalogError(str(exc)) from exc


ESTIMATES_KEPT = 1024
"""Estimates a catalog keeps (by vendor, images and the request's priced fields); past that it
starts afresh. Requests come in a few shapes, so a handful of entries serve nearly all."""
EstimateKey = tuple[str, int | None, int, int, int, int]

PACKAGED_CATALOG = Path(__file__).with_name("catalog.toml")
"""Next to this module (shipped as package data), found by path so any install layout works."""


class PriceCatalog:
    """Every vendor's price plus the client pricing rules; answers ``quote``."""

    def __init__(self, prices: Mapping[str, VendorPrice], config: PricingConfig) -> None:
        self._prices = dict(prices)
        self.config = config
        self._estimates: dict[EstimateKey, Quote] = {}
        """Quotes without a reported run time: a served request asks for the same one twice (its
        hold, its bill) at 10 us each, and so do the requests of the same shape after it. Prices
        and rules never change once loaded, and a quote is immutable, so it is shared."""

    @classmethod
    def load(cls, config: PricingConfig | None = None) -> PriceCatalog:
        """The packaged catalog overlaid by ``config.catalog_path`` and ``config.vendor_prices``."""
        config = config or PricingConfig()
        layers = [read_catalog_text(_read(PACKAGED_CATALOG), "pricing/catalog.toml")]
        if config.catalog_path is not None:
            layers.append(read_catalog_text(_read(config.catalog_path), str(config.catalog_path)))
        layers.append(config.vendor_prices)
        prices: dict[str, VendorPrice] = {}
        for layer in layers:
            for vendor, override in layer.items():
                prices[vendor] = apply_override(vendor, prices.get(vendor), override)
        return cls(prices, config)

    def vendors(self) -> list[str]:
        """Vendor names in catalog order."""
        return list(self._prices)

    def price(self, vendor: str) -> VendorPrice:
        try:
            return self._prices[vendor]
        except KeyError:
            raise UnknownVendor(vendor, self.vendors()) from None

    def __contains__(self, vendor: object) -> bool:
        return vendor in self._prices

    def __iter__(self) -> Iterator[VendorPrice]:
        return iter(self._prices.values())

    def quote(
        self, vendor: str, request: ImageRequest, *, run_seconds: Decimal | None = None, images: int | None = None
    ) -> Quote:
        """Price ``request`` on ``vendor``; see ``pricing.quote`` for the formula and rounding.

        ``run_seconds=None`` gives an estimate (routing, ceilings, reservations); the vendor's
        reported run time gives the final bill. Raises ``UnknownVendor``.
        """
        if run_seconds is not None:
            return compute_quote(self.price(vendor), self.config, request, run_seconds=run_seconds, images=images)
        key = (vendor, images, *priced_fields(request))
        quote = self._estimates.get(key)
        if quote is None:
            quote = compute_quote(self.price(vendor), self.config, request, images=images)
            if len(self._estimates) >= ESTIMATES_KEPT:
                self._estimates.clear()
            self._estimates[key] = quote
        return quote


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"cannot read price catalog {path}: {exc}") from exc
