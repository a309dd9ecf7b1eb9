"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from litestar import Response, get
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Schema
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core.errors import StateUnavailable
from proxy.api.injected import InjectedGateway
from proxy.api.openapi import Answer, documented
from proxy.api.schemas import Health, Readiness
from proxy.metrics import REGISTRY, STATE_DEGRADED


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
    "Prometheus' text exposition format")))
def metrics() -> Response[bytes]:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
