"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import logging

from litestar import Response, get
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core.errors import StateUnavailable, retry_after_headers
from proxy.api.injected import InjectedGateway
from proxy.metrics import REGISTRY, STATE_DEGRADED
from proxy.routing.readiness import assess, export_route_states

log = logging.getLogger(__name__)

NOT_READY_RETRY_AFTER_S = 5.0
"""What a 503 from ``/readyz`` advertises: about one probe interval."""


@get("/healthz", sync_to_thread=False)
def healthz() -> dict[str, str]:
    """The process is alive and its event loop answers."""
    return {"status": "ok"}


@get("/readyz")
async def readyz(gateway: InjectedGateway) -> Response[dict[str, object]]:
    """Ready when the state stores answer, no model is still loading and at least one route can
    serve (see ``proxy.routing.readiness``); the gateway is built before the first request. A
    replica whose Redis is away is taken out of the Service until it is back."""
    problems: list[str] = []
    try:
        await gateway.state.get("readyz")
        await gateway.billing.ledger.probe()
    except StateUnavailable as exc:
        problems.append(f"state store: {exc.message}")
    STATE_DEGRADED.set(1 if problems else 0)
    readiness = await assess(gateway.router.routes, gateway.router.health)
    problems += readiness.problems
    routes = [entry.as_json() for entry in readiness.routes]
    body: dict[str, object] = {"status": "not ready" if problems else "ready", "problems": problems,
                               "routes": routes}
    if problems:
        return Response(body, status_code=503, headers=retry_after_headers(NOT_READY_RETRY_AFTER_S))
    return Response(body)


@get("/metrics")
async def metrics(gateway: InjectedGateway) -> Response[bytes]:
    """Prometheus text; the route-state gauges are read from the shared state first, so every
    replica exports the same, current values."""
    try:
        export_route_states(await assess(gateway.router.routes, gateway.router.health))
    except Exception as exc:  # a failing store must not take the metrics down with it
        log.warning("route states not refreshed for /metrics: %s: %s", type(exc).__name__, exc)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
