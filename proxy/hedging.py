"""One request's allowance for a hedge: whether racing a second route is worth what it may cost.

The client pays only for the route that answers; the loser's cost is the gateway's loss. So a
hedge starts only when every budget has room for it:

- the request's: the hedge route's upstream cost is at most ``hedging.max_extra_usd_per_request``,
  and with a price ceiling (``max_price_usd``), both routes' prices together stay under it;
- the key's credit budget: the hedge route's price is reserved on top of the request's own
  reservation (released when the request ends), so a hedge never runs on credit the key lacks;
- the key's daily hedge budget (``routing.hedge_budget_usd_per_day``, else
  ``hedging.key_budget_usd_per_day``): one atomic ``incr_within`` per hedge, shared by replicas.

State::

    hedge:<key id>:<UTC date>    micro-USD of hedges started that day
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from core.errors import InsufficientCredits
from core.request import ImageRequest
from core.state.base import StateStore
from pricing.keys import KeyRecord
from pricing.ledger import Reservation
from pricing.money import to_micro_usd
from proxy.billing import Billing
from proxy.routing.route import Route
from proxy.settings import HedgingConfig

DAY_TTL_S = 2 * 24 * 3600.0


class HedgeAllowance:
    def __init__(self, billing: Billing, store: StateStore, config: HedgingConfig, key: KeyRecord,
                 request: ImageRequest) -> None:
        self.billing = billing
        self.store = store
        self.config = config
        self.key = key
        self.request = request
        self._reservations: list[Reservation] = []

    def _daily_budget(self) -> Decimal | None:
        routing = self.key.routing
        if routing is not None and routing.hedge_budget_usd_per_day is not None:
            return routing.hedge_budget_usd_per_day
        return self.config.key_budget_usd_per_day

    async def allow(self, primary: Route, hedge: Route) -> bool:
        """True when ``hedge`` may race ``primary`` now; its budgets are booked if so."""
        upstream = self.billing.quote(hedge.vendor, self.request).upstream_usd
        if upstream > self.config.max_extra_usd_per_request:
            return False
        price = self.billing.price_of(hedge, self.request)
        ceiling = self.request.max_price_usd
        if ceiling is not None and self.billing.price_of(primary, self.request) + price > ceiling:
            return False
        try:
            reservation = await self.billing.ledger.reserve(self.key.key_id, price, self.key.budget_credits)
        except InsufficientCredits:
            return False
        budget = self._daily_budget()
        if budget is not None:
            day = datetime.now(UTC).date().isoformat()
            if await self.store.incr_within(f"hedge:{self.key.key_id}:{day}", to_micro_usd(upstream),
                                            to_micro_usd(budget), ttl=DAY_TTL_S) is None:
                await self.billing.ledger.release(reservation)
                return False
        self._reservations.append(reservation)
        return True

    async def release(self) -> None:
        """Give back what was reserved for hedges (the client is charged once, for the winner)."""
        for reservation in self._reservations:
            await self.billing.ledger.release(reservation)
        self._reservations.clear()
