"""Who pays what for a request: client keys, credit reservations, charges, losses, replays.

The flow around one request: authenticate the key; replay a remembered ``Idempotency-Key``
answer for free; before each route is tried, hold the most the client could be charged on it
(the first route's price, raised on failover to a pricier one; a route the budget cannot cover
is skipped, and when none can, 402 before any vendor is called); then settle the price of the
route that served it, or release everything when no image was delivered.

Time-billed vendors (Eachlabs, the GPU worker, the in-process pipeline) are held at the price of
their billable cap (``Route.max_billable_s``), and a client is never charged for more run time
than that: the rest is the gateway's loss. A vendor's bill for a failed attempt is the
gateway's loss too, never the client's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from backends.base import BackendResult
from backends.vendors.registry import price_key
from core.errors import AuthenticationFailed, BackendError, StateUnavailable
from core.request import ImageRequest
from core.state.base import StateStore
from core.state.ledger_store import LedgerStore, Voided
from pricing.catalog import PriceCatalog
from pricing.charge_log import ChargeRecord
from pricing.config import KeyPolicy, PricingConfig
from pricing.keys import ApiKeyRegistry, KeyRecord
from pricing.ledger import Ledger, Reservation, Settlement
from pricing.money import format_usd
from pricing.quote import Quote
from proxy.metrics import (
    BILLING_OVERRUN_USD,
    CHARGED_USD,
    GATEWAY_LOSS_USD,
    HEDGE_COST_USD,
    UNCONFIRMED_CHARGES,
    UPSTREAM_COST_USD,
    VENDOR_COST_MISMATCH,
    labelled,
)
from proxy.owed_losses import OwedLoss
from proxy.routing.route import Route

ANONYMOUS = KeyRecord(key_id="anonymous", name="anonymous", budget_credits=None,
                      created=datetime(2026, 1, 1, tzinfo=UTC))
"""The ledger identity of requests when no client key is required."""



def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return None


@dataclass(frozen=True, slots=True)
class Charge:
    quote: Quote
    overrun_usd: Decimal = Decimal(0)
    """Vendor cost not passed on to the client (run time above the billable cap)."""

    @property
    def upstream_usd(self) -> Decimal:
        return self.quote.upstream_usd + self.overrun_usd

    def headers(self) -> dict[str, str]:
        return {
            "x-boltgate-cost-usd": format_usd(self.quote.client_usd),
            "x-boltgate-upstream-cost-usd": format_usd(self.upstream_usd),
            "x-boltgate-credits": str(self.quote.credits),
        }

    def billing(self) -> dict[str, object]:
        """The response body's ``billing`` object: what this request cost. Not ``usage``: OpenAI's
        clients read that as token counts (and LiteLLM refuses a ``usage`` without them)."""
        billing: dict[str, object] = {
            "images": self.quote.images,
            "cost_usd": format_usd(self.quote.client_usd),
            "upstream_cost_usd": format_usd(self.upstream_usd),
            "credits": str(self.quote.credits),
        }
        if self.quote.display is not None:
            billing["cost_display"] = str(self.quote.display)
        return billing


@dataclass(frozen=True, slots=True)
class PendingCharge:
    """A delivered request's charge, built once before its settle is first tried."""

    charge: Charge
    settlement: Settlement


@dataclass(frozen=True, slots=True)
class FinalBill:
    """What the client is charged for a delivered request, and what the vendor billed beyond it."""

    quote: Quote
    overrun_usd: Decimal = Decimal(0)
    """Vendor cost above the run time the client can be billed for (the gateway's loss)."""


OweLoss = Callable[[OwedLoss], None]
"""Takes a loss the state store did not book, to book it once the store answers
(``UnconfirmedCharges.owe_loss``: written down on disk, tried again in the background)."""


class Billing:
    def __init__(self, book: LedgerStore, store: StateStore, config: PricingConfig,
                 static_keys: dict[str, KeyPolicy], *, require_key: bool) -> None:
        """``book`` keeps the money, ``store`` the keys and idempotency records (both durable)."""
        self.config = config
        self.catalog = PriceCatalog.load(config)
        self.ledger = Ledger(book, store, config.credit_usd)
        self.keys = ApiKeyRegistry(store, static_keys)
        self.require_key = require_key
        self.owe_loss: OweLoss | None = None
        """Where a loss the store did not book goes (set by the app factory, which builds what
        books it later on this billing); without it, the booking's ``StateUnavailable`` is raised."""

    def check_priced(self, vendors: Iterable[str]) -> None:
        """Refuse to start with a route the catalog has no price for (it could bill nothing)."""
        for vendor in vendors:
            self.catalog.price(price_key(vendor))

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
        return self.catalog.quote(price_key(vendor), request, run_seconds=seconds, images=images)

    def _charges_by_time(self, route: Route) -> bool:
        return self.catalog.price(price_key(route.vendor)).charges_by_time

    def most_billable(self, route: Route, request: ImageRequest) -> Decimal:
        """The most the client can be charged if ``route`` serves ``request``: the price for
        per-image vendors, the price of the billable cap for time-billed ones."""
        if not self._charges_by_time(route):
            return self.price_of(route, request)
        return self.quote(route.vendor, request, run_seconds=route.max_billable_s(request.n)).client_usd

    async def hold_for(self, reservation: Reservation | None, key: KeyRecord, route: Route,
                       request: ImageRequest, *, lease_s: float) -> Reservation:
        """Make ``reservation`` (a new one when None) cover ``route``; ``InsufficientCredits`` when
        the budget can't, leaving any existing hold as it was."""
        most = self.most_billable(route, request)
        if reservation is None:
            return await self.ledger.reserve(key.key_id, most, key.budget_credits, lease_s=lease_s)
        await self.ledger.hold(reservation, most, lease_s=lease_s)
        return reservation

    def final_bill(self, route: Route, request: ImageRequest, *, run_seconds: float | None,
                   images: int) -> FinalBill:
        """The charge for ``images`` delivered by ``route``: run time past the cap is not billed."""
        quote = self.quote(route.vendor, request, run_seconds=run_seconds, images=images)
        if quote.seconds is None:
            return FinalBill(quote)
        cap = Decimal(str(route.max_billable_s(request.n)))
        if quote.seconds <= cap:
            return FinalBill(quote)
        capped = self.catalog.quote(price_key(route.vendor), request, run_seconds=cap, images=images)
        return FinalBill(capped, quote.upstream_usd - capped.upstream_usd)

    def pending_charge(self, reservation: Reservation, route: Route, bill: FinalBill,
                       result: BackendResult) -> PendingCharge:
        """The charge for ``bill``, with its charge-log entry, as every try of its settle writes it."""
        charge = Charge(bill.quote, bill.overrun_usd)
        record = ChargeRecord(
            key_id=reservation.api_key, request_id=reservation.reservation_id, vendor=route.vendor,
            region=route.region, vendor_request_id=result.vendor_request_id, images=bill.quote.images,
            run_seconds=None if result.run_seconds is None else Decimal(str(result.run_seconds)),
            catalog_cost_usd=charge.upstream_usd, vendor_reported_cost_usd=result.vendor_cost_usd,
            client_usd=bill.quote.client_usd,
        )
        settlement = self.ledger.settlement(reservation, bill.quote, overrun_usd=bill.overrun_usd, record=record)
        return PendingCharge(charge, settlement)

    async def settle(self, pending: PendingCharge) -> Charge:
        """Write the charge once (a retry changes nothing); count what it cost and what the vendor
        says it cost."""
        await self.ledger.charge(pending.settlement)
        charge, record = pending.charge, pending.settlement.record
        vendor = pending.settlement.vendor
        labelled(CHARGED_USD, vendor).inc(float(charge.quote.client_usd))
        labelled(UPSTREAM_COST_USD, vendor).inc(float(charge.upstream_usd))
        if charge.overrun_usd:
            labelled(BILLING_OVERRUN_USD, vendor).inc(float(charge.overrun_usd))
        if record is not None and record.vendor_cost_differs:
            labelled(VENDOR_COST_MISMATCH, vendor).inc()
        return charge

    async def void(self, pending: PendingCharge) -> Voided:
        """The request was answered with an error after its settle went unconfirmed: make sure it
        is not charged, and its vendor cost is the gateway's loss (``take_back``)."""
        outcome = await self.take_back(pending)
        labelled(UNCONFIRMED_CHARGES, outcome.value).inc()
        return outcome

    async def take_back(self, pending: PendingCharge) -> Voided:
        """Make sure ``pending``'s request ends up uncharged (``Ledger.void``: its charge taken
        back with a refund line if its settle landed, its hold closed if not), and book what the
        vendor cost as the gateway's loss, once per request however often this is called, since
        the images were made and paid for but never delivered (an unconfirmed settle; an async
        job that ended without them)."""
        outcome = await self.ledger.void(pending.settlement)
        await self.book_undelivered(pending)
        return outcome

    async def book_undelivered(self, pending: PendingCharge) -> None:
        """Book what ``pending``'s vendor cost as the gateway's loss, once per request (per hold:
        ``undelivered:<hold id>``) however often this is called and from wherever: the charge
        will never stand on that hold (taken back, or the hold closed without it), so the images
        were paid for and the client does not pay. ``take_back`` books it so; a job's run whose
        charge could not be kept, or whose settle found the hold closed, does too
        (``proxy.gateway``), and the job's end taking the same charge back books nothing more."""
        settlement = pending.settlement
        await self._book_loss(settlement.vendor, pending.charge.upstream_usd,
                              event_id=f"undelivered:{settlement.reservation.reservation_id}")

    async def book_served_again(self, pending: PendingCharge) -> None:
        """A job's run is paid for by the charge of another run of the job (one that was lost,
        or is still alive beside it: the charge that run kept for the job's hold is the one
        settled): the client pays that charge (its line in the charge log names that run's
        vendor), not this one, so what this run's vendor cost is the gateway's loss. Counted once
        per call: each call is one more generation a vendor billed."""
        await self._book_loss(pending.settlement.vendor, pending.charge.upstream_usd)

    async def record_hedge_loss(self, route: Route, request: ImageRequest, error: BackendError | None) -> None:
        """An attempt cancelled because another route answered first: the gateway's loss (the
        client pays only the winner), at what its vendor reported when the cancellation carried
        that (``error``: a job left running and billed), else at its estimated upstream cost."""
        if error is None:
            cost = self.quote(route.vendor, request).upstream_usd
        else:
            cost = self._billed_cost(route, request, error)
        await self._book_loss(route.vendor, cost)
        labelled(HEDGE_COST_USD, route.vendor).inc(float(cost))

    async def record_loss(self, route: Route, request: ImageRequest, error: BackendError) -> None:
        """A failed attempt the vendor billed anyway: the gateway's loss, never the client's."""
        await self._book_loss(route.vendor, self._billed_cost(route, request, error))

    async def _book_loss(self, vendor: str, cost: Decimal, event_id: str | None = None) -> None:
        """``cost`` booked as the gateway's loss to ``vendor`` in the ledger and in its metric,
        both once per ``event_id`` (every call, without one: a fresh id is given here, before the
        first try, so that every later try of the same loss books it once). When the store does
        not answer, the loss is owed (``owe_loss``), not dropped: booked once the store answers."""
        loss = OwedLoss(OwedLoss.event_id_for(event_id), vendor, cost, self.ledger.today())
        try:
            await self.book_loss(loss)
        except StateUnavailable:
            if self.owe_loss is None:
                raise
            self.owe_loss(loss)

    async def book_loss(self, loss: OwedLoss) -> bool:
        """Book ``loss`` in the ledger and count it in ``GATEWAY_LOSS_USD``, once per event id
        (however often it is tried, in whichever process); whether this call booked it."""
        booked = await self.ledger.record_loss(loss.vendor, loss.usd, event_id=loss.event_id, day=loss.day)
        if booked:
            labelled(GATEWAY_LOSS_USD, loss.vendor).inc(float(loss.usd))
        return booked

    def _billed_cost(self, route: Route, request: ImageRequest, error: BackendError) -> Decimal:
        """What the vendor said a failed attempt cost, else the catalog's price of its run time."""
        if error.vendor_cost_usd is not None:
            return error.vendor_cost_usd
        return self.quote(route.vendor, request, run_seconds=error.run_seconds).upstream_usd
