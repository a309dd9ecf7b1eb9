"""``GET /v1/backends``: every route as the router sees it now, from the state replicas share.

For each route: its breaker state and why, when it is tried again, latency p50/p95 and error
rate over the last minutes (``proxy.routing.stats``), what a 1024x1024 4-step image costs a
client there (and the vendor, for the admin or where ``expose_upstream_cost`` is on, as on the
image answers), and its last health probe. Readable with any client key (or without one when
keys are not required) or the admin token; ``backends_view = "admin"`` restricts it to the admin.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, get
from litestar.handlers import HTTPRouteHandler

from backends.base import LoadsModel
from core.request import ImageRequest
from pricing.money import format_usd
from proxy.api.admin import is_admin_token, require_admin
from proxy.api.injected import InjectedGateway, InjectedSettings
from proxy.api.openapi import Answer, documented
from proxy.api.schemas import BackendList
from proxy.api.security import backends_access
from proxy.billing import bearer_token
from proxy.gateway import Gateway
from proxy.routing.prober import last_probe
from proxy.routing.route import Route
from proxy.routing.stats import RouteSummary
from proxy.settings import Settings

REFERENCE_IMAGE = ImageRequest.model_validate({"prompt": "the reference image", "width": 1024, "height": 1024,
                                               "steps": 4, "seed": 0})
"""What the listed price is for: one 1024x1024 image at 4 steps."""


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


async def describe(gateway: Gateway, route: Route, summary: RouteSummary, *,
                   show_upstream: bool) -> dict[str, object]:
    status = await gateway.router.health.status(route)
    probe = await last_probe(gateway.state, route)
    quote = gateway.billing.quote(route.vendor, REFERENCE_IMAGE)
    body: dict[str, object] = {
        "route": route.key,
        "vendor": route.vendor,
        "region": route.region,
        "priority": route.priority,
        "state": status.state.value,
        "reason": status.reason,
        "since": status.since,
        "back_in_s": _seconds(status.back_in),
        "window_s": gateway.router.stats.window_s * gateway.router.stats.windows,
        "attempts": summary.attempts,
        "error_rate": None if summary.error_rate is None else round(summary.error_rate, 4),
        "latency_p50_s": _seconds(summary.p50_s),
        "latency_p95_s": _seconds(summary.p95_s),
        "latency_estimate_s": _seconds(summary.estimate_s),
        "price_usd_1024x1024_4_steps": format_usd(quote.client_usd),
        "last_probe": None if probe is None else probe.as_json(),
    }
    if show_upstream:
        body["upstream_usd_1024x1024_4_steps"] = format_usd(quote.upstream_usd)
    if isinstance(route.backend, LoadsModel):
        body["model"] = route.backend.load_state
    return body


async def list_backends(request: Request[Any, Any, Any], gateway: InjectedGateway,
                        settings: InjectedSettings) -> dict[str, object]:
    authorization = request.headers.get("authorization")
    admin = is_admin_token(settings, bearer_token(authorization))
    if settings.backends_view == "admin":
        require_admin(settings, authorization)
    elif not admin:
        await gateway.billing.authenticate(authorization)
    show_upstream = admin or gateway.expose_upstream_cost
    routes = gateway.router.routes
    summaries = await asyncio.gather(*(gateway.router.stats.summary(route) for route in routes))
    data = await asyncio.gather(*(describe(gateway, route, summary, show_upstream=show_upstream)
                                  for route, summary in zip(routes, summaries, strict=True)))
    return {"object": "list", "data": list(data)}


def backends_handler(settings: Settings) -> HTTPRouteHandler:
    """``GET /v1/backends``, documented with who may read it under ``settings``."""
    return get("/v1/backends", operation_class=documented(
        Answer(BackendList, "Every route, in the router's order of priority"), errors=(401, 403, 500, 503),
        security=backends_access(settings)))(list_backends)
