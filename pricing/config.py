"""Pricing settings: one pydantic model, nested by the gateway into its settings tree.

Everything has a default that serves a single machine, so an empty config prices every vendor
from the packaged catalog with a 35% markup. Amounts are ``Decimal``; values that arrive as
JSON or Python floats are converted through their shortest text form (``0.002`` stays
``Decimal("0.002")``), never through binary.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from pricing.key_names import PrintableName

PriceUnit = Literal["image", "second", "gpu_second"]
"""How a vendor charges: per image, per second of run time, or per GPU-second (local)."""


class VendorPriceOverride(BaseModel):
    """Part of one vendor's catalog entry; unset fields keep the catalog's value.

    A vendor the catalog does not know needs at least ``unit`` and ``price_usd`` (and
    ``estimated_seconds_per_image`` when it charges by time).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    unit: PriceUnit | None = None
    price_usd: Decimal | None = Field(default=None, ge=0)
    estimated_seconds_per_image: Decimal | None = Field(default=None, gt=0)
    scale_with_megapixels: bool | None = None
    scale_with_steps: bool | None = None


MAX_BUDGET_CREDITS = Decimal(10) ** 12
"""The largest budget a key may have: far beyond any real one, small enough that its amount in
micro-USD stays a 64-bit integer (the ledger's counters) at any sane credit value."""

BudgetCredits = Annotated[Decimal, Field(ge=0, le=MAX_BUDGET_CREDITS, decimal_places=6, allow_inf_nan=False)]
"""A key's budget in credits: finite, at most ``MAX_BUDGET_CREDITS``, at most six decimals
(``1e999999`` or ``1e-999999`` would reach the ledger's arithmetic and fail every request)."""

MAX_RATE = 1_000_000_000
"""The largest rate limit a key may have: far beyond any real one, and a count every state store
and JSON encoder holds."""


def _whole_number(value: object) -> object:
    """JSON Schema's ``integer`` takes ``5.0``; strict pydantic does not: a whole float is an int."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Rate = Annotated[int, Field(ge=1, le=MAX_RATE), BeforeValidator(_whole_number)]
"""A count per minute, or at once: at least 1, at most ``MAX_RATE``."""

MAX_USD_PER_DAY = Decimal("999999999.999999")
USD_TEXT_PATTERN = r"^[0-9]{1,9}(\.[0-9]{1,6})?$"
"""A USD amount written as text: plain decimal (no sign, exponent or spaces), six decimals at most."""
MICRO_USD = Decimal("0.000001")


def _usd_amount(value: object) -> object:
    """A number or the plain decimal text the API documents, as a ``Decimal``; a float through its
    shortest text, rounded to micro-USD (so it is stored, and read back, as such text). Text in
    any other form is refused (``Decimal`` alone takes ``"1e400"``)."""
    if isinstance(value, str):
        if re.fullmatch(USD_TEXT_PATTERN, value) is None:
            raise ValueError("must be a number of USD or a plain decimal string such as \"2.5\"")
        return Decimal(value)
    if isinstance(value, float):
        amount = Decimal(repr(value))
        if amount.is_finite() and abs(amount) <= MAX_USD_PER_DAY:
            amount = amount.quantize(MICRO_USD)
        return amount.copy_abs() if amount == 0 else amount  # -0.0 is 0, and written "0.000000"
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    return value


UsdPerDay = Annotated[
    Decimal, BeforeValidator(_usd_amount), Field(ge=0, le=MAX_USD_PER_DAY, allow_inf_nan=False),
    WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0, "maximum": float(MAX_USD_PER_DAY)},
                              {"type": "string", "pattern": USD_TEXT_PATTERN}]}),
]
"""USD per day: a number, or a decimal string, at most ``MAX_USD_PER_DAY``."""


class KeyLimits(BaseModel):
    """How fast one client key may go, shared by every replica; None: no limit on that count."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    requests_per_minute: Rate | None = None
    images_per_minute: Rate | None = None
    """Images asked for (``n``) per minute."""
    concurrent_requests: Rate | None = None

    @property
    def unlimited(self) -> bool:
        return self.requests_per_minute is None and self.images_per_minute is None and self.concurrent_requests is None


RoutingPolicyName = Literal["priority", "cheapest", "fastest", "balanced"]
"""How the router orders routes (``proxy.routing.policy``); named here because a key's policy
says which of them its requests may ask for."""


class KeyRouting(BaseModel):
    """What a key's requests may ask of the router."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    policies: tuple[RoutingPolicyName, ...] | None = None
    """The routing policies it may ask for per request; None: any."""
    pin_routes: bool = True
    """Whether it may ask for one vendor (``x-boltgate-route``)."""
    hedging: bool = True
    """Whether it may ask for hedging per request (``x-boltgate-hedge: on``)."""
    hedge_budget_usd_per_day: UsdPerDay | None = None
    """The most its hedges may cost the gateway per UTC day; None: the gateway's setting."""


class KeyPolicy(BaseModel):
    """A client key written in config (its value comes from the environment, never a file)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: PrintableName = "static"
    """Refused with a control character or a line separator, as a name sent to the admin API is."""
    budget_credits: BudgetCredits | None = None
    limits: KeyLimits | None = None
    """This key's rate limits; None: the gateway's ``rate_limits``."""
    routing: KeyRouting | None = None
    """What its requests may ask of the router; None: anything."""


class PricingConfig(BaseModel):
    """What clients pay: markup over the vendor's cost, a floor per image, credits, display."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    markup_pct: Decimal = Field(default=Decimal("35"), ge=0)
    """Added to every upstream cost, in percent (35 means the client pays 1.35x)."""
    vendor_markup_pct: dict[str, Decimal] = Field(default_factory=dict)
    """Per-vendor markup replacing ``markup_pct`` for that vendor."""
    min_price_per_image_usd: Decimal = Field(default=Decimal("0.001"), ge=0)
    """The least a client pays for one delivered image, whatever the vendor charged us."""
    credit_usd: Decimal = Field(default=Decimal("0.01"), gt=0)
    """The value of one credit in USD; budgets and balances are counted in credits."""
    display_currency: str | None = None
    """An optional second currency shown beside USD (e.g. ``"INR"``); never used to bill."""
    display_rate: Decimal | None = Field(default=None, gt=0)
    """Units of ``display_currency`` per USD, fixed (e.g. ``84.0``)."""
    catalog_path: Path | None = None
    """A TOML file laid out like ``pricing/catalog.toml`` whose entries override the packaged ones."""
    vendor_prices: dict[str, VendorPriceOverride] = Field(default_factory=dict)
    """Inline overrides applied last, e.g. ``{"imageapi": {"price_usd": "0.003"}}`` for a plan."""

    @model_validator(mode="after")
    def _display_needs_both(self) -> PricingConfig:
        if (self.display_currency is None) != (self.display_rate is None):
            raise ValueError("display_currency and display_rate must be set together")
        for vendor, pct in self.vendor_markup_pct.items():
            if pct < 0:
                raise ValueError(f"vendor_markup_pct[{vendor}] must be >= 0")
        return self

    def markup_for(self, vendor: str) -> Decimal:
        """The markup percentage that applies to ``vendor``."""
        return self.vendor_markup_pct.get(vendor, self.markup_pct)
