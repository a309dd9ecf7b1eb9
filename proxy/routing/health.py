"""Each route's breaker (closed, open, half-open, quarantined), kept in the state store so that
every replica reads the same state.

- **closed**: serving. ``failure_threshold`` consecutive failures open it.
- **open**: out for ``open_s`` (a failure streak, or a failed health probe). When that runs out
  it is tried again, and one more failure re-opens it at once (the streak is still counted).
- **quarantined**: out for ``quarantine_s`` after a vendor refused our key or credit.
- **half-open**: a passing health probe brought an open route back (a quarantined one only
  when the probe used our key); at most
  ``half_open_trials`` requests are let through (across replicas) until one succeeds (closed)
  or one fails (open again). Unused, it closes after ``half_open_s``.

State::

    health:<route>:state    {"state", "reason", "since"} with the state's TTL (absent: closed)
    health:<route>:fails    consecutive failures
    health:<route>:trials   requests let through while half-open
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

import orjson

from core.state.base import StateStore
from proxy.routing.route import Route
from proxy.settings import BreakerConfig


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    QUARANTINED = "quarantined"


@dataclass(frozen=True, slots=True)
class RouteStatus:
    state: CircuitState = CircuitState.CLOSED
    reason: str = ""
    since: float | None = None
    """Wall-clock time (epoch seconds) the state began; None for a route never out."""
    back_in: float | None = None
    """Seconds until an open or quarantined route is tried again."""

    @property
    def serving(self) -> bool:
        return self.state in (CircuitState.CLOSED, CircuitState.HALF_OPEN)

    def describe(self) -> str:
        name = _NAMES[self.state]
        return f"{name} ({self.reason})" if self.reason else name


_NAMES = {CircuitState.CLOSED: "closed", CircuitState.OPEN: "circuit open",
          CircuitState.HALF_OPEN: "half-open", CircuitState.QUARANTINED: "quarantined"}


CLOSED = RouteStatus()


class RouteHealth:
    def __init__(self, store: StateStore, config: BreakerConfig) -> None:
        self.store = store
        self.config = config

    @staticmethod
    def _key(route: Route, part: str) -> str:
        return f"health:{route.key}:{part}"

    async def status(self, route: Route) -> RouteStatus:
        raw = await self.store.get(self._key(route, "state"))
        if raw is None:
            return CLOSED
        try:
            stored = orjson.loads(raw)
            state = CircuitState(stored["state"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return CLOSED  # a record we cannot read must not take a route out for good
        back_in = None if state is CircuitState.HALF_OPEN else await self.store.ttl(self._key(route, "state"))
        return RouteStatus(state, str(stored.get("reason", "")), stored.get("since"), back_in)

    async def unavailable_reason(self, route: Route) -> str | None:
        """Why the route is out of rotation now, or None when it may be tried."""
        status = await self.status(route)
        return None if status.serving else status.describe()

    async def admit(self, route: Route) -> RouteStatus | None:
        """The route's status when a request may be sent to it now, else None. A half-open
        route admits at most ``half_open_trials`` requests across every replica."""
        status = await self.status(route)
        if status.state is CircuitState.HALF_OPEN:
            trials = await self.store.incr_within(self._key(route, "trials"), 1, self.config.half_open_trials)
            return status if trials is not None else None
        return status if status.serving else None

    async def _enter(self, route: Route, state: CircuitState, reason: str, ttl: float) -> None:
        record = {"state": state.value, "reason": reason[:300], "since": time.time()}
        await self.store.set(self._key(route, "state"), orjson.dumps(record), ttl=ttl)

    async def record_success(self, route: Route, status: RouteStatus = CLOSED) -> None:
        """A request succeeded; ``status`` is what ``admit`` answered (a half-open route closes)."""
        await self.store.delete(self._key(route, "fails"))
        if status.state is not CircuitState.CLOSED:
            await self.store.delete(self._key(route, "state"))

    async def record_failure(self, route: Route, reason: str = "", status: RouteStatus = CLOSED) -> None:
        """A failure that counts towards the breaker; a failed half-open trial re-opens at once."""
        fails = await self.store.incr(self._key(route, "fails"), 1, ttl=self.config.open_s * 10)
        if fails >= self.config.failure_threshold or status.state is CircuitState.HALF_OPEN:
            why = f"{fails} consecutive failures" + (f", last: {reason}" if reason else "")
            await self._enter(route, CircuitState.OPEN, why, self.config.open_s)

    async def quarantine(self, route: Route, reason: str = "the vendor refused our key or credit") -> None:
        await self._enter(route, CircuitState.QUARANTINED, reason, self.config.quarantine_s)

    async def probe_passed(self, route: Route, *, verifies_key: bool = True) -> None:
        """A health probe answered: an open route comes back half-open, and so does a
        quarantined one when the probe used our key (else it says nothing about the key)."""
        status = await self.status(route)
        if status.state is CircuitState.OPEN or (status.state is CircuitState.QUARANTINED and verifies_key):
            await self.store.set(self._key(route, "trials"), b"0", ttl=self.config.half_open_s)
            await self._enter(route, CircuitState.HALF_OPEN, f"probe passed after {status.describe()}",
                              self.config.half_open_s)

    async def probe_failed(self, route: Route, reason: str) -> None:
        """A health probe failed: the route is out until a probe passes or ``open_s`` runs out
        (a quarantine, which is longer and about our key, is left as it is)."""
        status = await self.status(route)
        if status.state is not CircuitState.QUARANTINED:
            await self._enter(route, CircuitState.OPEN, f"probe failed: {reason}", self.config.open_s)
