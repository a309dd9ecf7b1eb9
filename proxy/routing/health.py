"""Circuit breakers and quarantine per route, kept in the state store so replicas share them.

A route opens after ``failure_threshold`` consecutive failures and stays out for ``open_s``;
when that runs out it is tried again (half-open) and one more failure re-opens it at once, one
success closes it. A vendor refusing our key takes every region of that vendor account out
for ``quarantine_s`` (they share the key); a payment refusal (402) for ``credit_quarantine_s``
only, since it can clear on its own.

When the state store does not answer, breakers degrade instead of failing the request: every
route counts as available and failures go uncounted until it is back (logged, and
``boltgate_state_degraded`` is 1). Whether the request can then be served is the ledger's call.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TypeVar

from core.errors import StateUnavailable
from core.state.base import StateStore
from proxy.metrics import CIRCUIT_OPEN, STATE_DEGRADED, labelled
from proxy.routing.route import Route
from proxy.settings import BreakerConfig

log = logging.getLogger(__name__)
T = TypeVar("T")


async def _degrading(work: Awaitable[T], fallback: T) -> T:
    """``work``'s answer, or ``fallback`` while the state store is away."""
    try:
        answer = await work
    except StateUnavailable as error:
        STATE_DEGRADED.set(1)
        log.warning("breakers degraded (state store unavailable): %s", error.message)
        return fallback
    return answer


class RouteHealth:
    def __init__(self, store: StateStore, config: BreakerConfig) -> None:
        self.store = store
        self.config = config

    async def unavailable_reason(self, route: Route) -> str | None:
        """Why the route is out of rotation now, or None when it may be tried."""
        return await _degrading(self._unavailable_reason(route), None)

    async def _unavailable_reason(self, route: Route) -> str | None:
        if await self.store.get(self._quarantine_key(route)) is not None:
            return "quarantined after an auth/credit refusal"
        if await self.store.get(f"health:{route.key}:open") is not None:
            return "circuit open"
        return None

    async def record_success(self, route: Route) -> None:
        await _degrading(self.store.delete(f"health:{route.key}:fails"), None)
        labelled(CIRCUIT_OPEN, route.vendor, route.region).set(0)

    async def record_failure(self, route: Route) -> None:
        await _degrading(self._record_failure(route), None)

    async def _record_failure(self, route: Route) -> None:
        fails = await self.store.incr(f"health:{route.key}:fails", 1, ttl=self.config.open_s * 10)
        if fails >= self.config.failure_threshold:
            await self.store.set(f"health:{route.key}:open", b"1", ttl=self.config.open_s)
            labelled(CIRCUIT_OPEN, route.vendor, route.region).set(1)

    async def quarantine(self, route: Route, *, brief: bool = False) -> None:
        """Take the route's whole account out; ``brief`` for a refusal that may clear (402)."""
        ttl = self.config.credit_quarantine_s if brief else self.config.quarantine_s
        await _degrading(self.store.set(self._quarantine_key(route), b"1", ttl=ttl), None)
        labelled(CIRCUIT_OPEN, route.vendor, route.region).set(1)

    @staticmethod
    def _quarantine_key(route: Route) -> str:
        """Per vendor account (a route built without one is an account of its own)."""
        return f"health:account:{route.account or route.key}:quarantine"
