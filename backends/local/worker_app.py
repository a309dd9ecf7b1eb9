"""The GPU worker: the local engine as a small HTTP service the gateway routes to (vendor ``worker``).

    POST /v1/generate   ImageRequest JSON (init_image as base64) ->
                        {"images": [b64...], "format", "gpu_seconds", "batch_size", "device"}
    GET  /healthz       the process answers (503 once the model failed to load: restart me)
    GET  /readyz        200 once the model is loaded and warmed up, else 503
    GET  /metrics       Prometheus, the worker's own registry (``worker_metrics``)

Errors use OpenAI's envelope ``{"error": {"message", "type", "param", "code"}}``: 400 for input
the worker cannot serve, 503 with Retry-After when the queue is full or the model still loads,
so the gateway fails over at once.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from litestar import Litestar, MediaType, Request, Response, get, post
from litestar.exceptions import HTTPException
from pydantic import ValidationError

from backends.local.config import LocalBackendConfig
from backends.local.engine import LocalEngine, PipelineFactory, load_real_pipeline
from backends.local.worker_metrics import CONTENT_TYPE, WorkerMetrics
from core.errors import BoltgateError, InvalidRequest
from core.request import ImageRequest

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
    metrics.track_readiness(lambda: engine.ready)

    @post("/v1/generate", status_code=200)
    async def generate(request: Request[Any, Any, Any]) -> Response[dict[str, object]]:
        try:
            image_request = ImageRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            raise _invalid(exc) from exc
        started = time.monotonic()
        try:
            outcome = await engine.generate(image_request)
        except BoltgateError as exc:
            metrics.request_answered(exc.status_code)
            raise
        metrics.request_answered(200)
        metrics.request_served(time.monotonic() - started, outcome.gpu_seconds)
        return Response({
            "images": [base64.b64encode(data).decode("ascii") for data in outcome.images],
            "format": image_request.output_format,
            "gpu_seconds": outcome.gpu_seconds,
            "batch_size": outcome.batch_size,
            "device": engine.device,
        })

    @get("/healthz")
    async def healthz() -> Response[dict[str, str]]:
        """Live unless the model failed to load: a worker that can never serve should be restarted."""
        if engine.load_error is not None:
            return Response({"status": "failed", "error": str(engine.load_error)}, status_code=503)
        return Response({"status": "ok"})

    @get("/readyz")
    async def readyz() -> Response[dict[str, object]]:
        if engine.ready:
            return Response({"status": "ready", "device": engine.device})
        if engine.load_error is not None:
            return Response({"status": "failed", "error": str(engine.load_error)}, status_code=503)
        return Response({"status": "loading"}, status_code=503)

    @get("/metrics", media_type=MediaType.TEXT)
    async def prometheus() -> Response[bytes]:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    async def start_loading() -> None:
        engine.start_in_background()

    app = Litestar(
        route_handlers=[generate, healthz, readyz, prometheus],
        on_startup=[start_loading],
        on_shutdown=[engine.aclose],
        exception_handlers={BoltgateError: _error_response, HTTPException: _http_error_response},
        request_max_body_size=MAX_BODY_BYTES,
    )
    app.state.engine = engine
    app.state.metrics = metrics
    return app


def serve_worker(config: LocalBackendConfig, host: str, port: int) -> None:
    """Run the worker with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(create_worker_app(config), host=host, port=port, access_log=False, timeout_keep_alive=75,
                log_config=None)  # the process's logging is core.logs' (configured by the CLI)
