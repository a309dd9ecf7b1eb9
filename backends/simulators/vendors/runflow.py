"""Runflow: asynchronous runs. Create answers at once (``queued``); clients poll.

``POST /v1/models/{owner}/{slug}/runs`` (model path from ``SimulatorConfig.runflow_model``)
answers ``{id, status_code, model, created_at}``; ``GET /v1/runs/{id}`` answers the run: a run
goes queued -> [dispatching ->] running -> succeeded | failed, with ``output``
``{"image_urls": [...]}`` (JPEG), ``cost`` a decimal string and ``failure_code``,
``failure_stage``, ``failure_message``. There is no public cancel, as Runflow documents: a run
nobody polls any more runs to its end and is billed all the same (``job_cost``). Errors are
``{"code", "message", "errors"}``; a 429 carries no Retry-After or X-RateLimit-* header (their
Rate limits page: "429 responses do not currently carry rate-limit headers"). ``GET /v1/runs`` searches
runs (``{"items": [...], "next_pq", "prev_pq"}``, newest first, ``limit``), filtered by ``q``
(their Requests page: ``field:value`` terms joined by ``AND``; only ``:`` and ``=`` on
``client_ref``, ``status_code`` and ``id`` are understood here).

Assumed (not shown by their docs): 201 for a created run; a failed run costs its price; a
field the model page does not list answers 422.
"""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from backends.simulators.asgi import SimResponse, json_response
from backends.simulators.config import SimulatorConfig
from backends.simulators.faults import FAULT_KINDS
from backends.simulators.fields import FieldReader, InvalidField
from backends.simulators.jobs import Job, JobPhase
from backends.simulators.outputs import Generation, start_job
from backends.simulators.protocol import Call, SimError, SimulatedVendor, route

ERRORS: dict[int, tuple[str, str]] = {
    400: ("BAD_REQUEST", "The request body is not valid JSON"),
    401: ("UNAUTHORIZED", "Missing or invalid API key"),
    402: ("INSUFFICIENT_CREDIT", "Your balance is too low to start this run"),
    403: ("PERMISSION_DENIED", "This key may not run this model"),
    404: ("RUN_NOT_FOUND", "Run not found"),
    409: ("CONFLICT", "The run is already finished"),
    422: ("VALIDATION_ERROR", "The input is invalid"),
    429: ("RATE_LIMITED", "Rate limit exceeded: too many requests for this organization"),
    500: ("INTERNAL_ERROR", "Internal error"),
    503: ("MODEL_UNAVAILABLE", "The model is temporarily unavailable"),
}
FAILURE = {
    "failure_code": "INFERENCE_FAILED",
    "failure_message": "The model crashed while generating (CUDA error: an illegal memory access)",
    "failure_stage": "inference",
}
INPUTS = frozenset({"prompt", "negative_prompt", "seed", "width", "height", "guidance", "steps"})


def error_body(error: SimError) -> dict[str, Any]:
    code, message = ERRORS.get(error.status, ("ERROR", f"HTTP {error.status}"))
    return {"code": error.code or code, "message": error.message or message, "errors": error.errors}


def _read(call: Call) -> tuple[Generation, dict[str, Any]]:
    try:
        body = call.request.json()
    except ValueError:
        raise SimError(400) from None
    try:
        fields = FieldReader(body)
        fields.only(("input", "metadata", "callback_url", "client_ref"))
        data = FieldReader(body.get("input"), prefix="input.")
        data.only(INPUTS)
        data.text("negative_prompt")
        data.number("guidance", default=0.0, low=0.0, high=20.0)
        generation = Generation(
            prompt=data.prompt(),
            seed=data.seed(),
            width=data.integer("width", default=1024, low=256, high=2048),
            height=data.integer("height", default=1024, low=256, high=2048),
            steps=data.integer("steps", default=4, low=1, high=12),
        )
        fields.text("callback_url")
        fields.text("client_ref", max_len=256)
    except InvalidField as exc:
        raise SimError(422, errors=[{"field": exc.name, "message": exc.reason}]) from None
    extra = {name: body.get(name) for name in ("metadata", "client_ref", "callback_url")}
    return generation, extra


async def create_run(call: Call) -> SimResponse:
    model = f"{call.params['owner']}/{call.params['slug']}"
    if model != call.config.runflow_model:
        raise SimError(404, f"Model {model} not found", code="MODEL_NOT_FOUND")
    generation, extra = _read(call)
    job = start_job(call, f"run_{secrets.token_hex(12)}", generation, **extra, model=model)
    dispatched = {"id": job.id, "status_code": job.phase().value, "model": model,
                  "created_at": job.timestamp(0.0)}
    return json_response(dispatched, 201)


SEARCHABLE = frozenset({"client_ref", "status_code", "id"})


async def search_runs(call: Call) -> SimResponse:
    terms = [term.strip() for term in call.request.query.get("q", "").split(" AND ") if term.strip()]
    wanted: list[tuple[str, str]] = []
    for term in terms:
        name, sep, value = term.replace("=", ":", 1).partition(":")
        if not sep or name not in SEARCHABLE:
            raise SimError(422, errors=[{"field": "q", "message": f"cannot filter on {term[:40]!r}"}])
        wanted.append((name, value))
    try:
        limit = min(max(int(call.request.query.get("limit", "50")), 1), 500)
    except ValueError:
        raise SimError(422, errors=[{"field": "limit", "message": "not an integer"}]) from None
    bodies = [_run_body(call, job) for job in reversed(call.state.jobs.all())]
    items = [body for body in bodies if all(str(body.get(name)) == value for name, value in wanted)]
    return json_response({"items": items[:limit], "next_pq": None, "prev_pq": None})


async def get_run(call: Call) -> SimResponse:
    return json_response(_run_body(call, _job(call)))


def _job(call: Call) -> Job:
    job = call.state.jobs.get(call.params["run_id"])
    if job is None:
        raise SimError(404, f"Run {call.params['run_id']} not found")
    return job


async def get_model(call: Call) -> SimResponse:
    """``GET /v1/models/{owner}/{id}`` (docs.runflow.io, get-model-by-owner-and-slug): the model's
    record; the fields a health probe might read, with the values of an available model."""
    owner, slug = call.params["owner"], call.params["slug"]
    return json_response({"slug": slug, "name": f"{owner}/{slug}", "status_code": "active",
                          "availability_status": "available", "is_public": True})


def _run_body(call: Call, job: Job) -> dict[str, Any]:
    phase = job.phase()
    cost = job_cost(call.config, job)
    body: dict[str, Any] = {
        "id": job.id,
        "model": job.extra["model"],
        "status_code": phase.value,
        "input": job.input,
        "output": None,
        "duration_ms": round(job.run_seconds() * 1000) if phase.terminal else None,
        "cost": str(cost) if cost is not None else None,
        "failure_code": None,
        "failure_message": None,
        "metadata": job.extra["metadata"],
        "client_ref": job.extra["client_ref"],
        "callback_url": job.extra["callback_url"],
        "created_at": job.timestamp(0.0),
        "started_at": job.timestamp(job.started_after()),
        "completed_at": job.timestamp(job.finished_after()),
        "links": {},
    }
    if phase is JobPhase.SUCCEEDED:
        body["output"] = {"image_urls": list(job.outputs)}
    elif phase is JobPhase.FAILED:
        body.update(FAILURE)
    return body


def job_cost(config: SimulatorConfig, job: Job) -> Decimal | None:
    """The fixed price per image once the run is over, read or not: nothing stops a run."""
    if not job.phase().terminal:
        return None
    return config.runflow_price_usd * len(job.outputs) if job.started() else Decimal("0")


SPEC = SimulatedVendor(
    name="runflow",
    image_format="jpeg",
    auth=("bearer",),
    routes=(
        route("POST", r"/v1/models/(?P<owner>[^/]+)/(?P<slug>[^/]+)/runs", create_run, creates_output=True),
        route("GET", r"/v1/runs", search_runs),
        route("GET", r"/v1/runs/(?P<run_id>[^/]+)", get_run),
        route("GET", r"/v1/models/(?P<owner>[^/]+)/(?P<slug>[^/]+)", get_model),
    ),
    error_body=error_body,
    fault_kinds=FAULT_KINDS,
    job_cost=job_cost,
)
