"""Who pays what for a request: client keys, credit reservations, charges, losses, replays.

The flow around one request: authenticate the key; replay a remembered ``Idempotency-Key``
answer for free; reserve the most this request could cost on any route that may serve it
(refused with 402 before any vendor is called when the budget can't cover it); then settle the
real price of the route that served it, or release everything when no image was delivered. A
vendor's bill for a failed attempt is the gateway's loss, never the client's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from core.errors import AuthenticationFailed, BackendError
from core.request import ImageRequest
from core.state.base import StateStore
from pricing.catalog import PriceCatalog
from pricing.config import KeyPolicy, PricingConfig
from pricing.keys import ApiKeyRegistry, KeyRecord
from pricing.ledger import Ledger, Reservation
from pricing.money import format_usd
from pricing.quote import Quote
from proxy.metrics import CHARGED_USD, GATEWAY_LOSS_USD, UPSTREAM_COST_USD, labelled
from proxy.routing.route import Route

ANONYMOUS = KeyRecord(key_id="anonymous", name="anonymous", budget_credits=None,
                      created=datetime(2026, 1, 1, tzinfo=UTC))
"""The ledger identity of requests when no client key is required."""

CATALOG_VENDOR = {"worker": "local"}
"""Backends priced under another catalog entry (GPU workers are our own GPUs)."""


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return None


def catalog_vendor(vendor: str) -> str:
    return CATALOG_VENDOR.get(vendor, vendor)


@dataclass(frozen=True, slots=True)
class Charge:
    quote: Quote

    def headers(self) -> dict[str, str]:
        return {
            "x-boltgate-cost-usd": format_usd(self.quote.client_usd),
            "x-boltgate-upstream-cost-usd": format_usd(self.quote.upstream_usd),
            "x-boltgate-credits": str(self.quote.credits),
        }

    def billing(self) -> dict[str, object]:
        """The response body's ``billing`` object: what this request cost. Not ``usage``: OpenAI's
        clients read that as token counts (and LiteLLM refuses a ``usage`` without them)."""
        billing: dict[str, object] = {
            "images": self.quote.images,
            "cost_usd": format_usd(self.quote.client_usd),
            "upstream_cost_usd": format_usd(self.quote.upstream_usd),
            "credits": str(self.quote.credits),
        }
        if self.quote.display is not None:
            billing["cost_display"] = str(self.quote.display)
        return billing


class Billing:
    def __init__(self, store: StateStore, config: PricingConfig, static_keys: dict[str, KeyPolicy],
                 *, require_key: bool) -> None:
        self.config = config
        self.catalog = PriceCatalog.load(config)
        self.ledger = Ledger(store, config.credit_usd)
        self.keys = ApiKeyRegistry(store, static_keys)
        self.require_key = require_key

    def check_priced(self, vendors: Iterable[str]) -> None:
        """Refuse to start with a route the catalog has no price for (it could bill nothing)."""
        for vendor in vendors:
            self.catalog.price(catalog_vendor(vendor))

    async def authenticate(self, authorization: str | None) -> KeyRecord:
        """The caller's key record; anonymous when keys are not required and none was sent."""
        token = bearer_token(authorization)
        if not token:
            if self.require_key:
                raise AuthenticationFailed("Missing API key: send 'Authorization: Bearer <key>'")
            return ANONYMOUS
        record = await self.keys.lookup(token)
        if record is None:
            if self.require_key:
                raise AuthenticationFailed("Incorrect or revoked API key")
            return ANONYMOUS
        return record

    def price_of(self, route: Route, request: ImageRequest) -> Decimal:
        """What the client would pay if ``route`` served ``request`` (estimated)."""
        return self.quote(route.vendor, request).client_usd

    def quote(self, vendor: str, request: ImageRequest, *, run_seconds: float | None = None,
              images: int | None = None) -> Quote:
        seconds = None if run_seconds is None else Decimal(str(run_seconds))
        return self.catalog.quote(catalog_vendor(vendor), request, run_seconds=seconds, images=images)

    async def reserve(self, key: KeyRecord, request: ImageRequest, routes: list[Route]) -> Reservation:
        """Hold the most this request could cost on any of ``routes`` (failover may pick any)."""
        most = max((self.price_of(route, request) for route in routes), default=Decimal(0))
        return await self.ledger.reserve(key.key_id, most, key.budget_credits)

    async def settle(self, reservation: Reservation, vendor: str, quote: Quote) -> Charge:
        await self.ledger.settle(reservation, quote)
        labelled(CHARGED_USD, vendor).inc(float(quote.client_usd))
        labelled(UPSTREAM_COST_USD, vendor).inc(float(quote.upstream_usd))
        return Charge(quote)

    async def record_loss(self, route: Route, request: ImageRequest, error: BackendError) -> None:
        """A failed attempt the vendor billed anyway: the gateway's loss, never the client's."""
        reported = error.vendor_cost_usd
        if reported is None:
            reported = self.quote(route.vendor, request, run_seconds=error.run_seconds).upstream_usd
        await self.ledger.record_loss(route.vendor, reported)
        labelled(GATEWAY_LOSS_USD, route.vendor).inc(float(reported))
