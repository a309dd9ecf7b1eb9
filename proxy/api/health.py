"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import hmac
import logging
from typing import Any

from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Schema

from core.errors import AuthenticationFailed, PermissionDenied, StateUnavailable, retry_after_headers
from proxy.api.injected import InjectedGateway, InjectedSettings
from proxy.api.openapi import RETRY_AFTER, Answer, documented
from proxy.api.schemas import Health, Readiness
from proxy.api.security import PUBLIC, metrics_access
from proxy.billing import bearer_token
from proxy.metrics import STATE_DEGRADED
from proxy.metrics_exposition import CONTENT_TYPE_LATEST, exposition
from proxy.routing.readiness import assess, export_route_states
from proxy.settings import Settings

log = logging.getLogger(__name__)

NOT_READY_RETRY_AFTER_S = 5.0
"""What a 503 from ``/readyz`` advertises: about one probe interval."""


@get("/healthz", sync_to_thread=False, operation_class=documented(Answer(Health, "Alive"), security=PUBLIC))
def healthz() -> dict[str, str]:
    """The process is alive and its event loop answers."""
    return {"status": "ok"}


@get("/readyz", operation_class=documented(Answer(Readiness, "Ready to serve"), errors=(500,),
                                           others={503: Answer(Readiness, "Not ready: the problems say why",
                                                                    RETRY_AFTER)}, security=PUBLIC))
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


METRICS_ANSWER = Answer({"text/plain": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))},
                        "Prometheus' text exposition format")


async def metrics(request: Request[Any, Any, Any], settings: InjectedSettings,
                  gateway: InjectedGateway) -> Response[bytes]:
    """Prometheus metrics: revenue, margins and vendors, so private once client keys are required
    (``metrics_token`` or the admin token as a bearer token; see ``Settings.metrics_public``). The
    route-state gauges are read from the shared state first, so every replica exports the same,
    current values."""
    if not settings.metrics_open:
        check_metrics_token(request.headers.get("authorization"), settings)
    try:
        export_route_states(await assess(gateway.router.routes, gateway.router.health))
    except Exception as exc:  # a failing store must not take the metrics down with it
        log.warning("route states not refreshed for /metrics: %s: %s", type(exc).__name__, exc)
    # As a header, not a media type: Litestar appends "; charset=utf-8" to any text/ media type, and
    # prometheus_client's already has one. A duplicate parameter is no media type at all to Go's
    # parser, and Prometheus 3 fails the scrape of a Content-Type it cannot parse.
    return Response(exposition(), headers={"content-type": CONTENT_TYPE_LATEST})


def metrics_handler(settings: Settings) -> HTTPRouteHandler:
    """``GET /metrics``, documented as public or behind its token as ``settings`` make it."""
    return get("/metrics", operation_class=documented(METRICS_ANSWER, errors=(401, 403, 500),
                                                      security=metrics_access(settings)))(metrics)


def check_metrics_token(authorization: str | None, settings: Settings) -> None:
    tokens = [secret.get_secret_value().encode() for secret in (settings.metrics_token, settings.admin_token)
              if secret is not None]
    if not tokens:
        raise PermissionDenied("/metrics is private while client keys are required: set BOLTGATE_METRICS_TOKEN "
                               "(or BOLTGATE_METRICS_PUBLIC=true)")
    sent = bearer_token(authorization)
    if sent is None:
        raise AuthenticationFailed("/metrics needs 'Authorization: Bearer <metrics token>'")
    # Every token is compared, so the time taken says nothing about which one came close.
    if not any([hmac.compare_digest(sent.encode(), token) for token in tokens]):
        raise PermissionDenied("Wrong metrics token")
