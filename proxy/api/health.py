"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Request, Response, get
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Schema
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core.errors import AuthenticationFailed, PermissionDenied, StateUnavailable
from proxy.api.injected import InjectedGateway, InjectedSettings
from proxy.api.openapi import Answer, documented
from proxy.api.schemas import Health, Readiness
from proxy.billing import bearer_token
from proxy.metrics import REGISTRY, STATE_DEGRADED
from proxy.settings import Settings


@get("/healthz", sync_to_thread=False, operation_class=documented(Answer(Health, "Alive")))
def healthz() -> dict[str, str]:
    """The process is alive and its event loop answers."""
    return {"status": "ok"}


@get("/readyz", operation_class=documented(Answer(Readiness, "Ready to serve"), errors=(500,),
                                           others={503: Answer(Readiness, "Not ready: the problems say why")}))
async def readyz(gateway: InjectedGateway) -> Response[dict[str, object]]:
    """Ready when the gateway has a route and its state stores answer (it is built before the
    server takes its first request). A replica whose Redis is away is taken out of the Service
    until it is back."""
    problems: list[str] = []
    if not gateway.router.routes:
        problems.append("no route enabled")
    else:
        try:
            await gateway.state.get("readyz")
            await gateway.billing.ledger.probe()
        except StateUnavailable as exc:
            problems.append(f"state store: {exc.message}")
        STATE_DEGRADED.set(1 if problems else 0)
    body: dict[str, object] = {"status": "not ready" if problems else "ready", "problems": problems,
                               "routes": [route.key for route in gateway.router.routes]}
    return Response(body, status_code=503 if problems else 200)


@get("/metrics", sync_to_thread=False, operation_class=documented(Answer(
    {"text/plain": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))},
    "Prometheus' text exposition format"), errors=(401, 403, 500)))
def metrics(request: Request[Any, Any, Any], settings: InjectedSettings) -> Response[bytes]:
    """Prometheus metrics: revenue, margins and vendors, so private once client keys are required
    (``metrics_token`` or the admin token as a bearer token; see ``Settings.metrics_public``)."""
    if not settings.metrics_open:
        check_metrics_token(request.headers.get("authorization"), settings)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


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
