"""Active health probes: each route, every interval, for free, feeding the breakers.

A probe is the backend's own ``probe`` (a vendor's models, status or account endpoint, else a
HEAD of its base URL; the worker's ``/readyz``; the in-process model's load state), never a
paid generation. Each replica runs the loop, but a route is probed at most once per interval
across all of them: the probe first takes ``probe:<route>:lock`` with ``set_if_absent`` and a
TTL of one interval, and only the replica that got it probes.

Verdicts feed ``RouteHealth``: a pass brings an open route back half-open (and a quarantined
one, when the probe used our key), a refused key quarantines the route's account (briefly for
a payment refusal, as in the router), a failure opens it.
The last verdict is kept for ``GET /v1/backends``.

State::

    probe:<route>:lock      held by the replica probing this interval
    health:<route>:probe    {"ok", "detail", "at", "seconds", "by"} of the last probe
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from backends.base import ProbedBackend, ProbeOutcome
from core.state.base import StateStore
from proxy.metrics import PROBES, labelled
from proxy.routing.health import RouteHealth
from proxy.routing.route import Route
from proxy.settings import ProbeConfig
from proxy.shutdown import UNWIND_S, cancel_and_wait

log = logging.getLogger(__name__)

LAST_PROBE_TTL_S = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class ProbeRecord:
    ok: bool
    detail: str
    at: float
    """Wall-clock time (epoch seconds)."""
    seconds: float

    def as_json(self) -> dict[str, object]:
        return {"ok": self.ok, "detail": self.detail, "at": self.at, "seconds": round(self.seconds, 4)}


async def last_probe(store: StateStore, route: Route) -> ProbeRecord | None:
    raw = await store.get(f"health:{route.key}:probe")
    if raw is None:
        return None
    try:
        data = orjson.loads(raw)
        return ProbeRecord(bool(data["ok"]), str(data["detail"]), float(data["at"]), float(data["seconds"]))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


class HealthProber:
    def __init__(self, routes: Sequence[Route], health: RouteHealth, config: ProbeConfig) -> None:
        self.routes = [route for route in routes if isinstance(route.backend, ProbedBackend)]
        self.health = health
        self.store = health.store
        self.config = config
        self.replica = secrets.token_hex(4)
        self._task: asyncio.Task[None] | None = None

    async def probe_once(self, route: Route) -> ProbeOutcome | None:
        """Probe ``route`` unless some replica already did this interval; the outcome, or None."""
        lock = f"probe:{route.key}:lock"
        if not await self.store.set_if_absent(lock, self.replica.encode(), ttl=self.config.interval_s):
            return None
        backend = route.backend
        assert isinstance(backend, ProbedBackend)
        try:
            outcome = await backend.probe(self.config.timeout_s)
        except Exception as exc:  # a probe must never take the loop down
            outcome = ProbeOutcome(False, f"probe raised {type(exc).__name__}: {exc}")
        await self._record(route, outcome)
        return outcome

    async def _record(self, route: Route, outcome: ProbeOutcome) -> None:
        """Apply the verdict to the breaker, then keep it (a kept verdict has been applied)."""
        if outcome.ok:
            await self.health.probe_passed(route, verifies_key=outcome.verifies_key)
            verdict = "ok"
        elif outcome.key_refused:
            await self.health.quarantine(route, f"probe: {outcome.detail}", brief=outcome.payment_refused)
            verdict = "key_refused"
        else:
            await self.health.probe_failed(route, outcome.detail)
            verdict = "failed"
        record = ProbeRecord(outcome.ok, outcome.detail[:300], time.time(), outcome.seconds)
        await self.store.set(f"health:{route.key}:probe",
                             orjson.dumps({**record.as_json(), "by": self.replica}), ttl=LAST_PROBE_TTL_S)
        labelled(PROBES, route.vendor, route.region, verdict).inc()

    async def probe_all(self) -> None:
        await asyncio.gather(*(self._probe_logged(route) for route in self.routes))

    async def _probe_logged(self, route: Route) -> None:
        try:
            await self.probe_once(route)
        except Exception as exc:  # the state store failed: try again next interval
            log.warning("probing %s failed: %s: %s", route.key, type(exc).__name__, exc)

    async def run(self) -> None:
        """Probe every interval until cancelled; the first round starts within a tenth of an
        interval (random, so that replicas started together do not all race for the locks)."""
        await asyncio.sleep(random.uniform(0, self.config.interval_s / 10))
        while True:
            await self.probe_all()
            await asyncio.sleep(self.config.interval_s)

    def start(self) -> None:
        if self._task is None and self.routes:
            self._task = asyncio.create_task(self.run(), name="boltgate-health-probes")

    async def stop(self) -> None:
        """Cancel the loop; a probe whose connection swallows the cancel is left behind after
        ``UNWIND_S`` (``proxy.shutdown``): a probe is free, and its verdict not needed."""
        if self._task is not None:
            await cancel_and_wait({self._task}, within_s=UNWIND_S, what="the health probes")
            self._task = None
