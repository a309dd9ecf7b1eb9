"""Each route's breaker (closed, open, half-open, quarantined), kept in the state store so that
every replica reads the same state.

- **closed**: serving. ``failure_threshold`` consecutive failures open it.
- **open**: out for ``open_s`` (a failure streak, or a failed health probe). When that runs out
  it is tried again, and one more failure re-opens it at once (the streak is still counted).
- **quarantined**: a vendor refused our key (401/403): every region of that vendor *account*
  is out for ``quarantine_s``, since they share the key; a payment refusal (402) for
  ``credit_quarantine_s`` only, since it can clear on its own.
- **half-open**: a passing health probe brought an open route back (a quarantined one only
  when the probe used our key, which then lifts its account's quarantine); at most
  ``half_open_trials`` requests are let through (across replicas) until one succeeds (closed)
  or one fails (open again). A trial taken by a request that then does not send it (the
  client's credit cannot cover the route, a hedge not started), or whose answer says nothing
  about the route (the vendor refused that request, a 429, a filtered image: see
  ``proxy.routing.attempts.judges_route``), is given back (``release_trial``). Unused, it closes
  after ``half_open_s``.

State::

    health:<route>:state                  {"state", "reason", "since"} with the state's TTL (absent: closed)
    health:<route>:fails                  consecutive failures
    health:<route>:trials                 requests let through while half-open
    health:account:<account>:quarantine   {"reason", "since"} with the quarantine's TTL

When the state store does not answer, breakers degrade instead of failing the request: every
route counts as closed and failures go uncounted until it is back (logged, and
``boltgate_state_degraded`` is 1). Whether the request can then be served is the ledger's call.
The circuit gauges are not set here: ``/metrics`` reads them from this shared state at scrape
time (``proxy.routing.readiness.export_route_states``), so every replica exports the same.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

import orjson

from core.errors import StateUnavailable
from core.state.base import StateStore
from proxy.metrics import STATE_DEGRADED
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

_UNREADABLE_QUARANTINE = "quarantined after an auth/credit refusal"
"""The reason shown for a quarantine record that carries none we can read."""


class RouteHealth:
    def __init__(self, store: StateStore, config: BreakerConfig) -> None:
        self.store = store
        self.config = config

    @staticmethod
    def _key(route: Route, part: str) -> str:
        return f"health:{route.key}:{part}"

    @staticmethod
    def _quarantine_key(route: Route) -> str:
        """Per vendor account (a route built without one is an account of its own)."""
        return f"health:account:{route.account or route.key}:quarantine"

    async def status(self, route: Route) -> RouteStatus:
        """The route's breaker state; closed while the state store is away."""
        return await _degrading(self._status(route), CLOSED)

    async def _status(self, route: Route) -> RouteStatus:
        quarantine = await self.store.get(self._quarantine_key(route))
        if quarantine is not None:
            record = _read_record(quarantine)
            return RouteStatus(CircuitState.QUARANTINED, str(record.get("reason") or _UNREADABLE_QUARANTINE),
                               _since(record), await self.store.ttl(self._quarantine_key(route)))
        raw = await self.store.get(self._key(route, "state"))
        if raw is None:
            return CLOSED
        stored = _read_record(raw)
        try:
            state = CircuitState(str(stored["state"]))
        except (KeyError, TypeError, ValueError):
            return CLOSED  # a record we cannot read must not take a route out for good
        if state is CircuitState.QUARANTINED:
            return CLOSED  # quarantines live per account, never in a route's record
        back_in = None if state is CircuitState.HALF_OPEN else await self.store.ttl(self._key(route, "state"))
        return RouteStatus(state, str(stored.get("reason", "")), _since(stored), back_in)

    async def unavailable_reason(self, route: Route) -> str | None:
        """Why the route is out of rotation now, or None when it may be tried."""
        status = await self.status(route)
        return None if status.serving else status.describe()

    async def admit(self, route: Route) -> RouteStatus | None:
        """The route's status when a request may be sent to it now, else None. A half-open
        route admits at most ``half_open_trials`` requests across every replica; with the state
        store away, every route is admitted."""
        return await _degrading(self._admit(route), CLOSED)

    async def _admit(self, route: Route) -> RouteStatus | None:
        status = await self._status(route)
        if status.state is CircuitState.HALF_OPEN:
            trials = await self.store.incr_within(self._key(route, "trials"), 1, self.config.half_open_trials)
            return status if trials is not None else None
        return status if status.serving else None

    async def release_trial(self, route: Route, status: RouteStatus) -> None:
        """Give back the trial ``admit`` let through (``status`` is what it answered) when no
        request was sent on it; a closed route took none."""
        if status.state is CircuitState.HALF_OPEN:
            await _degrading(self._release_trial(route), None)

    async def _release_trial(self, route: Route) -> None:
        key = self._key(route, "trials")
        if await self.store.incr(key, -1, ttl=self.config.half_open_s) < 0:
            await self.store.delete(key)  # half-open ended meanwhile (its count reset): nothing to give back

    async def _enter(self, route: Route, state: CircuitState, reason: str, ttl: float) -> None:
        record = {"state": state.value, "reason": reason[:300], "since": time.time()}
        await self.store.set(self._key(route, "state"), orjson.dumps(record), ttl=ttl)

    async def record_success(self, route: Route, status: RouteStatus = CLOSED) -> None:
        """A request succeeded; ``status`` is what ``admit`` answered (a half-open route closes)."""
        await _degrading(self._record_success(route, status), None)

    async def _record_success(self, route: Route, status: RouteStatus) -> None:
        await self.store.delete(self._key(route, "fails"))
        if status.state is not CircuitState.CLOSED:
            await self.store.delete(self._key(route, "state"))

    async def record_failure(self, route: Route, reason: str = "", status: RouteStatus = CLOSED) -> None:
        """A failure that counts towards the breaker; a failed half-open trial re-opens at once."""
        await _degrading(self._record_failure(route, reason, status), None)

    async def _record_failure(self, route: Route, reason: str, status: RouteStatus) -> None:
        fails = await self.store.incr(self._key(route, "fails"), 1, ttl=self.config.open_s * 10)
        if fails >= self.config.failure_threshold or status.state is CircuitState.HALF_OPEN:
            why = f"{fails} consecutive failures" + (f", last: {reason}" if reason else "")
            await self._enter(route, CircuitState.OPEN, why, self.config.open_s)

    async def quarantine(self, route: Route, reason: str = "", *, brief: bool = False) -> None:
        """Take the route's whole vendor account out; ``brief`` for a refusal that may clear (402)."""
        ttl = self.config.credit_quarantine_s if brief else self.config.quarantine_s
        why = reason or ("the vendor refused payment" if brief else "the vendor refused our key")
        record = orjson.dumps({"reason": why[:300], "since": time.time()})
        await _degrading(self.store.set(self._quarantine_key(route), record, ttl=ttl), None)

    async def probe_passed(self, route: Route, *, verifies_key: bool = True) -> None:
        """A health probe answered: an open route comes back half-open, and so does a
        quarantined one when the probe used our key (which lifts its account's quarantine;
        without the key the probe says nothing about it)."""
        await _degrading(self._probe_passed(route, verifies_key), None)

    async def _probe_passed(self, route: Route, verifies_key: bool) -> None:
        status = await self._status(route)
        if status.state is CircuitState.OPEN or (status.state is CircuitState.QUARANTINED and verifies_key):
            if status.state is CircuitState.QUARANTINED:
                await self.store.delete(self._quarantine_key(route))
            await self.store.set(self._key(route, "trials"), b"0", ttl=self.config.half_open_s)
            await self._enter(route, CircuitState.HALF_OPEN, f"probe passed after {status.describe()}",
                              self.config.half_open_s)

    async def probe_failed(self, route: Route, reason: str) -> None:
        """A health probe failed: the route is out until a probe passes or ``open_s`` runs out
        (a quarantine, which is longer and about our key, is left as it is)."""
        await _degrading(self._probe_failed(route, reason), None)

    async def _probe_failed(self, route: Route, reason: str) -> None:
        status = await self._status(route)
        if status.state is not CircuitState.QUARANTINED:
            await self._enter(route, CircuitState.OPEN, f"probe failed: {reason}", self.config.open_s)


def _read_record(raw: bytes) -> dict[str, object]:
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return record if isinstance(record, dict) else {}


def _since(record: dict[str, object]) -> float | None:
    since = record.get("since")
    return float(since) if isinstance(since, int | float) else None
