"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import logging

from litestar import Response, get
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core.errors import retry_after_headers
from proxy.api.injected import InjectedGateway
from proxy.metrics import REGISTRY
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
    """Ready when the state store answers, no model is still loading and at least one route can
    serve (see ``proxy.routing.readiness``); the gateway is built before the first request."""
    problems: list[str] = []
    routes: list[dict[str, object]] = []
    try:
        readiness = await assess(gateway.router.routes, gateway.router.health)
    except Exception as exc:  # any failure of the store means not ready
        problems.append(f"state store: {type(exc).__name__}: {str(exc)[:200]}")
    else:
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
