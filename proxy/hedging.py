"""One request's allowance for a hedge: whether racing a second route is worth what it may cost.

The client pays only for the route that answers; the loser's cost is the gateway's loss. So a
hedge starts only when every budget has room for it:

- the request's: the hedge route's upstream cost is at most ``hedging.max_extra_usd_per_request``,
  and with a price ceiling (``max_price_usd``), both routes' prices together stay under it;
- the key's daily hedge budget (``routing.hedge_budget_usd_per_day``, else
  ``hedging.key_budget_usd_per_day``): one atomic ``incr_within`` per hedge, shared by replicas;
- the key's credit budget: the request's one credit hold is raised to cover both racing routes
  at once (``proxy.request_hold``), so a hedge never runs on credit the key lacks, and the
  client is still charged once, for the winner, when that hold is settled.

State::

    hedge:<key id>:<UTC date>    micro-USD of hedges started that day
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from core.request import ImageRequest
from core.state.base import StateStore
from pricing.keys import KeyRecord
from pricing.money import to_micro_usd
from proxy.billing import Billing
from proxy.request_hold import RequestHold
from proxy.routing.route import Route
from proxy.settings import HedgingConfig

DAY_TTL_S = 2 * 24 * 3600.0


class HedgeAllowance:
    def __init__(self, billing: Billing, store: StateStore, config: HedgingConfig, key: KeyRecord,
                 request: ImageRequest, hold: RequestHold) -> None:
        self.billing = billing
        self.store = store
        self.config = config
        self.key = key
        self.request = request
        self.hold = hold

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
        ceiling = self.request.max_price_usd
        if ceiling is not None and (self.billing.price_of(primary, self.request)
                                    + self.billing.price_of(hedge, self.request)) > ceiling:
            return False
        budget = self._daily_budget()
        day_key = f"hedge:{self.key.key_id}:{datetime.now(UTC).date().isoformat()}"
        if budget is not None and await self.store.incr_within(
                day_key, to_micro_usd(upstream), to_micro_usd(budget), ttl=DAY_TTL_S) is None:
            return False
        if not await self.hold.cover_race(primary, hedge):
            if budget is not None:
                await self.store.incr(day_key, -to_micro_usd(upstream))  # the hedge did not start
            return False
        return True
