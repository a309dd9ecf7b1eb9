"""The GPU worker: the local engine as a small HTTP service the gateway routes to (vendor ``worker``).

    POST /v1/generate   ImageRequest JSON (init_image as base64), with the worker's token and the
                        caller's deadline (see ``worker_requests``) ->
                        {"images": [b64...], "format", "gpu_seconds", "batch_size", "device"}
                        plus "strength" for image-to-image: the strength served (see ``schedule``)
    GET  /healthz       the process answers (503 once the model failed to load, or the pipeline
                        failed ``restart_after_failures`` requests in a row: restart me)
    GET  /readyz        200 once the model is loaded and warmed up, else 503 (also after
                        ``unready_after_failures`` failures in a row, until one request succeeds)
    GET  /metrics       Prometheus, the worker's own registry (``worker_metrics``); with a
                        metrics token (``metrics_token_env``) only for ``Authorization: Bearer``
                        that token (401 otherwise)

Errors use OpenAI's envelope ``{"error": {"message", "type", "param", "code"}}``: 400 for input
the worker cannot serve, 503 with Retry-After when the queue is full or the model still loads,
so the gateway fails over at once.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import time
from typing import Any

from litestar import Litestar, MediaType, Request, Response, get, post
from litestar.exceptions import HTTPException
from pydantic import ValidationError

from backends.local.config import LocalBackendConfig
from backends.local.engine import LocalEngine, PipelineFactory, load_real_pipeline
from backends.local.schedule import img2img_schedule
from backends.local.worker_metrics import CONTENT_TYPE, WorkerMetrics
from backends.local.worker_requests import (
    TIMEOUT_HEADER,
    check_token,
    deadline_from,
    unless_disconnected,
    worker_token,
)
from core.errors import BoltgateError, ConfigurationError, InvalidRequest
from core.request import ImageRequest

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 40 * 1024 * 1024
"""Room for a base64 init image of the gateway's largest accepted upload."""


def _invalid(error: ValidationError) -> InvalidRequest:
    first = error.errors(include_url=False)[0]
    location = ".".join(str(part) for part in first["loc"])
    message = f"{location}: {first['msg']}" if location else first["msg"]
    return InvalidRequest(message, param=str(first["loc"][0]) if first["loc"] else None)


def _error_response(_: Request[Any, Any, Any], exc: BoltgateError) -> Response[dict[str, object]]:
    return Response(exc.body(), status_code=exc.status_code, headers=exc.headers)


def _http_error_response(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, object]]:
    error = BoltgateError(str(exc.detail), code="not_found" if exc.status_code == 404 else "http_error")
    error.error_type = "invalid_request_error" if exc.status_code < 500 else "server_error"
    return Response(error.body(), status_code=exc.status_code, headers=exc.headers)


def create_worker_app(config: LocalBackendConfig, *, factory: PipelineFactory = load_real_pipeline) -> Litestar:
    """The worker app; the model starts loading when the app starts (see ``/readyz``)."""
    metrics = WorkerMetrics()
    engine = LocalEngine(config, factory=factory, observer=metrics)
    metrics.track_gpu_memory(engine.memory_bytes)
    metrics.track_eager_fallbacks(engine.eager_fallbacks)
    metrics.track_readiness(lambda: engine.ready)

    token = worker_token(config.auth_token_env)
    metrics_token = worker_token(config.metrics_token_env)
    if token is None:
        log.warning("no worker token in $%s: /v1/generate accepts calls from anyone who reaches this port",
                    config.auth_token_env)

    @post("/v1/generate", status_code=200)
    async def generate(request: Request[Any, Any, Any]) -> Response[dict[str, object]]:
        check_token(token, request.headers.get("authorization"))
        deadline = deadline_from(request.headers.get(TIMEOUT_HEADER))
        try:
            image_request = ImageRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            raise _invalid(exc) from exc
        started = time.monotonic()
        try:
            outcome = await unless_disconnected(request.receive, engine.generate(image_request, deadline))
        except BoltgateError as exc:
            metrics.request_answered(exc.status_code)
            raise
        metrics.request_answered(200)
        metrics.request_served(time.monotonic() - started, outcome.gpu_seconds)
        body: dict[str, object] = {
            "images": [base64.b64encode(data).decode("ascii") for data in outcome.images],
            "format": image_request.output_format,
            "gpu_seconds": outcome.gpu_seconds,
            "batch_size": outcome.batch_size,
            "device": engine.device,
        }
        if image_request.is_edit:  # the strength served, on the checkpoint's distilled steps (``schedule``)
            body["strength"] = img2img_schedule(image_request.steps, image_request.strength).strength
        return Response(body)

    @get("/healthz")
    async def healthz() -> Response[dict[str, object]]:
        """Live unless the model failed to load or the pipeline failed ``restart_after_failures`` requests
        in a row: a worker that can never serve should be restarted."""
        if engine.load_error is not None:
            return Response({"status": "failed", "error": str(engine.load_error)}, status_code=503)
        if not engine.alive:
            return Response({"status": "failing", "consecutive_failures": engine.health.consecutive},
                            status_code=503)
        return Response({"status": "ok"})

    @get("/readyz")
    async def readyz() -> Response[dict[str, object]]:
        if engine.ready:
            return Response({"status": "ready", "device": engine.device})
        if engine.load_error is not None:
            return Response({"status": "failed", "error": str(engine.load_error)}, status_code=503)
        if engine.batcher is not None:  # loaded, but failing: out of rotation until a request or probe succeeds
            return Response({"status": "failing", "consecutive_failures": engine.health.consecutive},
                            status_code=503)
        return Response({"status": "loading"}, status_code=503)

    @get("/metrics", media_type=MediaType.TEXT)
    async def prometheus(request: Request[Any, Any, Any]) -> Response[bytes]:
        check_token(metrics_token, request.headers.get("authorization"), "/metrics needs the metrics token")
        # A header, not a media type: Litestar would append a second charset (see proxy/api/health.py).
        return Response(metrics.render(), headers={"content-type": CONTENT_TYPE})

    async def start_loading() -> None:
        engine.start_in_background()

    app = Litestar(
        route_handlers=[generate, healthz, readyz, prometheus],
        on_startup=[start_loading],
        on_shutdown=[engine.aclose],
        exception_handlers={BoltgateError: _error_response, HTTPException: _http_error_response},
        request_max_body_size=MAX_BODY_BYTES,
        logging_config=None,  # Litestar's own would add a second format; the process's is core.logs'
    )
    app.state.engine = engine
    app.state.metrics = metrics
    return app


def serve_worker(config: LocalBackendConfig, host: str, port: int) -> None:
    """Run the worker with uvicorn until interrupted; without a token, only on a loopback address."""
    import uvicorn

    if worker_token(config.auth_token_env) is None and not _is_loopback(host):
        raise ConfigurationError(
            f"the worker listens on {host} without a token: set ${config.auth_token_env} (and the same "
            "value as the gateway route's key, WORKER_API_KEY by default), or listen on 127.0.0.1")

    uvicorn.run(create_worker_app(config), host=host, port=port, access_log=False, timeout_keep_alive=75,
                log_config=None)  # the process's logging is core.logs' (configured by the CLI)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
