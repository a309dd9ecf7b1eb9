"""Runflow's runs API, served at ``/vendors/runflow``: create a run, then poll it.

``POST /vendors/runflow/v1/models/{owner}/{slug}/runs`` with ``Authorization: Bearer <gateway
key>`` and ``{"input": {prompt, negative_prompt, seed, width, height, guidance, steps},
"metadata"?, "client_ref"?}`` answers ``RunDispatched`` (``{id, status_code, model,
created_at}``); ``GET /vendors/runflow/v1/runs/{id}`` answers the run (``status_code``,
``output.image_urls``, ``duration_ms``, ``cost``, timestamps). Errors are Runflow's envelope
``{"code", "message", "errors"}``; a body Runflow would refuse is a 422 whose ``errors`` names
the field. Shapes: ``backends/vendors/contracts/runflow/`` (runflow-js ``types.ts``, the docs'
Get run and Errors pages).

The create answers at once, as Runflow's does (``status_code: "queued"``): the run is an async
job of the gateway (``proxy.doors.runs``), its credits held at create and charged once when it
succeeds. A poll maps the job's state onto Runflow's ``status_code`` (``STATUS_CODES``); its JPEG
images (Runflow's output format) are the gateway's image URLs, and a failed run carries
``failure_code``/``failure_message``. Runflow publishes no cancel (only an admin action), so this
door has none either. Refused: ``callback_url`` (the gateway calls nobody back from this door).
Assumed: the model path is any name of SDXL-Lightning (``bytedance/sd-xl-lightning``), ``cost``
is the gateway's price, ``metadata`` is a note of at most 16 KiB (``MAX_METADATA_BYTES``).
"""

from __future__ import annotations

from typing import Any

import orjson
from litestar import Response, Router, get, post

from core.errors import BoltgateError, ClientError, InvalidRequest, ModelNotFound
from core.request import resolve_model
from proxy.api.injected import InjectedGateway, InjectedJobs
from proxy.doors.runs import AnyRequest, DoorRun, DoorRuns, authenticate, error_handler, iso_time, json_body
from proxy.doors.spec import DoorSpec, InputMapping

CODES = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 402: "INSUFFICIENT_CREDIT", 403: "PERMISSION_DENIED",
         404: "RUN_NOT_FOUND", 409: "CONFLICT", 413: "PAYLOAD_TOO_LARGE", 422: "VALIDATION_ERROR",
         429: "RATE_LIMITED", 499: "CLIENT_CLOSED_REQUEST", 503: "MODEL_UNAVAILABLE"}
"""Runflow's documented codes by status (docs.runflow.io: Errors > Common codes)."""

INPUT = InputMapping(
    fields={"prompt": "prompt", "negative_prompt": "negative_prompt", "seed": "seed", "width": "width",
            "height": "height", "guidance": "guidance_scale", "steps": "steps"},
    output_format="jpeg",
    prefix="input.",
)
TOP_LEVEL = frozenset({"input", "metadata", "client_ref", "callback_url"})
MAX_METADATA_BYTES = 16 * 1024
MAX_METADATA_DEPTH = 32
"""``metadata`` is kept with the run and echoed by every poll: at most this much JSON, nested at
most this deep (assumed: Runflow documents no limit; a run's notes, not its payload)."""


def _metadata(value: Any) -> Any:
    """``value`` when it can be kept with the run; else a 422 naming ``metadata``."""
    if value is None:
        return None
    too_deep = InvalidRequest(f"'metadata' must be nested at most {MAX_METADATA_DEPTH} levels deep",
                              param="metadata")
    try:
        size = len(orjson.dumps(value))
    except orjson.JSONEncodeError as exc:  # orjson's own limit, far past ours
        raise too_deep from exc
    if size > MAX_METADATA_BYTES:
        raise InvalidRequest(f"'metadata' is {size} bytes as JSON; at most {MAX_METADATA_BYTES} are kept",
                             param="metadata")
    level = [value]
    for _ in range(MAX_METADATA_DEPTH):  # what lies below the levels allowed
        level = [child for item in level if isinstance(item, dict | list)
                 for child in (item.values() if isinstance(item, dict) else item)]
    if any(isinstance(item, dict | list) for item in level):
        raise too_deep
    return value


def error_body(error: BoltgateError) -> dict[str, Any]:
    status = 422 if isinstance(error, InvalidRequest) and error.status_code == 400 else error.status_code
    if isinstance(error, ModelNotFound):
        code = "MODEL_NOT_FOUND"
    else:
        code = CODES.get(status, "INTERNAL_ERROR" if status >= 500 else "ERROR")
    errors = [{"field": error.param, "message": error.message}] if isinstance(error, ClientError) and error.param \
        else None
    return {"code": code, "message": error.message, "errors": errors}


RUNFLOW = DoorSpec(name="runflow", auth=("bearer",), error_body=error_body, invalid_status=422,
                   source="runflow-js packages/sdk/src/types.ts; docs.runflow.io Get run, Errors")


STATUS_CODES = {"queued": "queued", "running": "running", "succeeded": "succeeded", "failed": "failed",
                "cancelled": "canceled"}
"""A job's state -> Runflow's ``status_code`` (runflow-js ``RunStatus``, contracts ``statuses.json``)."""


def _dispatched(run: DoorRun, model: str) -> dict[str, Any]:
    return {"id": run.id, "status_code": STATUS_CODES[run.status], "model": model,
            "created_at": iso_time(run.created_at)}


def _run_body(run: DoorRun) -> dict[str, Any]:
    seconds = run.seconds
    error = run.error or {}
    return {
        "id": run.id,
        "model": run.extra.get("model"),
        "status_code": STATUS_CODES[run.status],
        "input": run.input,
        "output": {"image_urls": list(run.image_urls)} if run.status == "succeeded" else None,
        "duration_ms": None if seconds is None else round(seconds * 1000),
        "cost": run.cost_usd,
        "failure_code": error.get("code") if run.error else None,
        "failure_message": error.get("message") if run.error else None,
        "metadata": run.extra.get("metadata"),
        "client_ref": run.extra.get("client_ref"),
        "callback_url": None,
        "created_at": iso_time(run.created_at),
        "started_at": iso_time(run.started_at),
        "completed_at": iso_time(run.completed_at),
        "links": {},
    }


@post("/v1/models/{owner:str}/{slug:str}/runs", status_code=200)
async def create_run(request: AnyRequest, owner: str, slug: str, gateway: InjectedGateway,
                     jobs: InjectedJobs) -> Response[bytes]:
    key = await authenticate(request, RUNFLOW, gateway.billing)
    model = f"{owner}/{slug}"
    resolve_model(model)
    body = await json_body(request)
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object with an 'input' object", param="input")
    for name in body:
        if name == "callback_url":
            raise InvalidRequest("'callback_url' is not supported by this gateway: poll GET /v1/runs/{id}",
                                 param=name, code="unsupported_parameter")
        if name not in TOP_LEVEL:
            raise InvalidRequest(f"Unrecognized field: '{name}'", param=name, code="unknown_parameter")
    if "input" not in body:
        raise InvalidRequest("'input' is required", param="input")
    client_ref = body.get("client_ref")
    if client_ref is not None and (not isinstance(client_ref, str) or len(client_ref) > 256):
        raise InvalidRequest("'client_ref' must be a string of at most 256 characters", param="client_ref")
    image_request = INPUT.to_request(body["input"])
    extra = {"model": model, "metadata": _metadata(body.get("metadata")), "client_ref": client_ref}
    run = await DoorRuns("runflow", jobs).submit(request, key, image_request, input=body["input"], extra=extra)
    return Response(content=orjson.dumps(_dispatched(run, model)), media_type="application/json",
                    headers=run.create_headers)


@get("/v1/runs/{run_id:str}")
async def get_run(request: AnyRequest, run_id: str, gateway: InjectedGateway, jobs: InjectedJobs) -> Response[bytes]:
    key = await authenticate(request, RUNFLOW, gateway.billing)
    run = await DoorRuns("runflow", jobs).find(run_id, key, "Run")
    return Response(content=orjson.dumps(_run_body(run)), media_type="application/json", headers=run.headers)


ROUTER = Router(path="/vendors/runflow", include_in_schema=False, route_handlers=[create_run, get_run],
                exception_handlers={BoltgateError: error_handler(RUNFLOW)})
