"""Whether this gateway can serve now, and if not, why: what ``/readyz`` answers.

Not ready while a model is still loading in process (a request would wait for it), and not
ready when no route can serve: every one open, quarantined, unreachable by its probe (which
opens it) or failed to load. The breaker states come from the shared state store, so every
replica gives the same answer, and a route a passing probe brings back makes it ready again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from backends.base import LoadsModel
from proxy.metrics import CIRCUIT_OPEN, ROUTE_STATE, labelled
from proxy.routing.health import CircuitState, RouteHealth, RouteStatus
from proxy.routing.route import Route


@dataclass(frozen=True, slots=True)
class RouteReadiness:
    route: Route
    status: RouteStatus
    load_state: str | None = None
    """For a backend that loads a model: loading, ready or failed."""

    @property
    def serving(self) -> bool:
        return self.status.serving and self.load_state in (None, "ready")

    def describe(self) -> str:
        if self.load_state in ("loading", "failed"):
            return f"{self.route.key}: model {self.load_state}"
        return f"{self.route.key}: {self.status.describe()}"

    def as_json(self) -> dict[str, object]:
        body: dict[str, object] = {"route": self.route.key, "state": self.status.state.value,
                                   "reason": self.status.reason}
        if self.load_state is not None:
            body["model"] = self.load_state
        return body


@dataclass(slots=True)
class Readiness:
    routes: list[RouteReadiness] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.problems


async def assess(routes: Sequence[Route], health: RouteHealth) -> Readiness:
    readiness = Readiness()
    if not routes:
        readiness.problems.append("no route enabled")
        return readiness
    for route in routes:
        load_state = route.backend.load_state if isinstance(route.backend, LoadsModel) else None
        readiness.routes.append(RouteReadiness(route, await health.status(route), load_state))
    warming = [entry.route.key for entry in readiness.routes if entry.load_state == "loading"]
    if warming:
        readiness.problems.append("warming up: " + ", ".join(warming))
    elif not any(entry.serving for entry in readiness.routes):
        readiness.problems.append("no route can serve: " + "; ".join(entry.describe() for entry in readiness.routes))
    return readiness


def export_route_states(readiness: Readiness) -> None:
    """Set the breaker gauges from the shared state just read (called at scrape time)."""
    for entry in readiness.routes:
        vendor, region = entry.route.vendor, entry.route.region
        labelled(CIRCUIT_OPEN, vendor, region).set(0 if entry.status.serving else 1)
        for state in CircuitState:
            labelled(ROUTE_STATE, vendor, region, state.value).set(1 if entry.status.state is state else 0)
