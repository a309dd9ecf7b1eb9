"""Eachlabs: predictions, created then polled, every input value sent as a string.

``POST /v1/prediction/`` -> ``{"status": "success", "message", "predictionID"}`` ("success"
means accepted). ``GET /v1/prediction/{id}`` -> ``{id, input, status, output, logs, metrics:
{predict_time, cost}, urls: {cancel, get}}`` with status created -> starting -> processing ->
success | error | cancelled, as their Get Prediction page documents. ``output`` is one URL, or
a list when ``num_outputs`` > 1 (PNG); on ``error`` it is their error envelope (``error_code``,
``error_message``...). ``POST /v1/prediction/{id}/cancel`` stops a live prediction, which is
then not billed. Both ``Authorization: Bearer`` and the older ``X-API-Key`` are accepted.

Assumed (not shown by their docs): a failed prediction bills its run time; a safety refusal (the
``nsfw`` fault) is an ``error`` with code ``CONTENT_MODERATION``; a cancel of a finished
prediction answers 409; image-to-image takes ``image`` and ``strength`` (0.3-0.8); a field the
docs do not list answers 400.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from decimal import Decimal
from typing import Any

import httpx
import orjson

from backends.simulators.asgi import SimResponse, json_response
from backends.simulators.config import SimulatorConfig
from backends.simulators.faults import FAULT_KINDS
from backends.simulators.fields import FieldReader, InvalidField
from backends.simulators.jobs import Fate, Job, JobPhase
from backends.simulators.outputs import Generation, start_job
from backends.simulators.protocol import Call, SimError, SimulatedVendor, route
from backends.simulators.render import decodable

MODEL, VERSION = "sdxl-lightning-4step", "0.0.1"
ERRORS = {
    400: "Invalid input for model",
    401: "Invalid or missing API key",
    402: "payment required",
    404: "Prediction not found",
    409: "Prediction already finished",
    429: "too many requests",
    500: "Failed to create prediction",
}
DETAILS = {
    402: "the estimated cost of your in-flight executions exceeds your current balance ($1.00). "
         "please wait for an active execution to finish or top up your balance",
    429: "Account rate limited: accounts with a balance of $10.00 or less are limited to 10 concurrent "
         "executions. Keep your balance above $10.00 for higher concurrency, or wait for an active "
         "execution to finish.",
}
"""Their Error Reference: 402 and 429 carry ``{status, error, details}``, the rest ``{error}``."""
INPUTS = frozenset({"prompt", "negative_prompt", "width", "height", "num_outputs", "num_inference_steps",
                    "guidance_scale", "scheduler", "seed", "disable_safety_checker", "image", "strength"})
SCHEDULERS = frozenset(
    {"DDIM", "DPMSolverMultistep", "HeunDiscrete", "KarrasDPM", "K_EULER_ANCESTRAL", "K_EULER", "PNDM"}
)
STATUSES = {
    JobPhase.QUEUED: "created",
    JobPhase.DISPATCHING: "starting",
    JobPhase.RUNNING: "processing",
    JobPhase.SUCCEEDED: "success",
    JobPhase.FAILED: "error",
    JobPhase.CANCELED: "cancelled",
}
FAILURE_ERROR = "CUDA error: an illegal memory access was encountered"


def error_body(error: SimError) -> dict[str, Any]:
    message = error.message or ERRORS.get(error.status, f"HTTP {error.status}")
    if error.status in DETAILS:
        return {"status": error.status, "error": message, "details": DETAILS[error.status]}
    return {"error": message}


def failure_envelope(job: Job) -> dict[str, Any]:
    """Their error envelope (Video API > Error catalog) for a prediction that errored."""
    moderated = job.nsfw
    return {
        "classification": {"category": "UNKNOWN" if moderated else "PROVIDER"},
        "error": "Execution failed",
        "error_code": "CONTENT_MODERATION" if moderated else "PROVIDER_FAILED",
        "error_message": "The output was flagged by the safety checker" if moderated else FAILURE_ERROR,
        "error_step": "poll",
        "execution_id": job.id,
        "model_slug": MODEL,
        "retryable": False,
        "status": "ERROR",
        "success": False,
    }


async def _read(call: Call) -> Generation:
    try:
        body = call.request.json()
        fields = FieldReader(body)
        if fields.text("model") != MODEL or fields.text("version") != VERSION:
            raise SimError(400)
        fields.only(("model", "version", "input", "webhook_url", "webhook_secret"))
        data = FieldReader(body.get("input"), prefix="input.", strings=True)
        data.only(INPUTS)
        data.text("negative_prompt")
        data.number("guidance_scale", default=0.0, low=0.0, high=20.0)
        data.choice("scheduler", SCHEDULERS, default="K_EULER")
        data.choice("disable_safety_checker", ("true", "false"), default="false")
        source = data.text("image", max_len=50_000_000)
        strength = data.number("strength", default=0.5, low=0.3, high=0.8)
        return Generation(
            prompt=data.prompt(),
            seed=data.seed(),
            width=data.integer("width", default=1024, low=256, high=1280),
            height=data.integer("height", default=1024, low=256, high=1280),
            steps=data.integer("num_inference_steps", default=4, low=1, high=10),
            n=data.integer("num_outputs", default=1, low=1, high=4),
            init_image=await _source_image(source) if source is not None else None,
            strength=strength if source is not None else 0.0,
        )
    except ValueError:  # unparseable JSON or InvalidField: Eachlabs says no more than this
        raise SimError(400) from None


async def _source_image(source: str) -> bytes:
    """The image-to-image source from a ``data:`` URI or an http(s) URL."""
    if source.startswith("data:"):
        header, _, payload = source.partition(",")
        if not header.endswith(";base64"):
            raise InvalidField("input.image", "must be a base64 data URI")
        try:
            raw = base64.b64decode(payload, validate=True)
        except binascii.Error:
            raise InvalidField("input.image", "has invalid base64") from None
    elif source.startswith(("http://", "https://")):
        try:
            async with httpx.AsyncClient(timeout=10.0) as client:
                response = await client.get(source)
                response.raise_for_status()
        except httpx.HTTPError:
            raise InvalidField("input.image", "could not be downloaded") from None
        raw = response.content
    else:
        raise InvalidField("input.image", "must be a data URI or a URL")
    if not await asyncio.to_thread(decodable, raw):
        raise InvalidField("input.image", "is not an image")
    return raw


async def create(call: Call) -> SimResponse:
    generation = await _read(call)
    # A safety refusal is a prediction that errors (their NSFW Content page), not a flagged image.
    fate: Fate | None = "fail" if call.faulted("nsfw") else None
    job = start_job(call, str(uuid.uuid4()), generation, fate=fate, seed=generation.seed)
    return json_response({"status": "success", "message": "Prediction created successfully", "predictionID": job.id})


async def get(call: Call) -> SimResponse:
    return json_response(_prediction_body(call, _job(call)))


async def cancel(call: Call) -> SimResponse:
    job = _job(call)
    call.state.cancels.append(job.id)
    if not job.cancel():
        raise SimError(409)
    return json_response({"status": "success", "message": "Prediction canceled successfully"})


async def list_models(call: Call) -> SimResponse:
    """``GET /v1/models``: the public catalog (no key, per their api/overview page), this model only."""
    return json_response([{"title": "SDXL Lightning 4step", "slug": "sdxl-lightning-4step", "version": "0.0.1"}])


def _job(call: Call) -> Job:
    job = call.state.jobs.get(call.params["prediction_id"])
    if job is None:
        raise SimError(404)
    return job


def _prediction_body(call: Call, job: Job) -> dict[str, Any]:
    phase = job.phase()
    predict_time = round(job.run_seconds(), 3) if job.started() else None
    cost = job_cost(call.config, job)
    url = f"{call.request.base_url}/v1/prediction/{job.id}"
    body: dict[str, Any] = {
        "id": job.id,
        "input": job.input,
        "status": STATUSES[phase],
        "output": None,
        "logs": _logs(job, phase) or None,
        "metrics": {"predict_time": predict_time, "cost": _number(cost) if cost is not None else None},
        "urls": {"cancel": f"{url}/cancel", "get": url},
    }
    if phase is JobPhase.SUCCEEDED:
        body["output"] = job.outputs[0] if len(job.outputs) == 1 else list(job.outputs)
    elif phase is JobPhase.FAILED:
        body["output"] = failure_envelope(job)
    return body


def job_cost(config: SimulatorConfig, job: Job) -> Decimal | None:
    """Per second of run time once the prediction is over; a cancelled one costs nothing."""
    phase = job.phase()
    if phase is JobPhase.CANCELED:
        return Decimal(0)
    if not phase.terminal:
        return None
    seconds = Decimal(str(round(job.run_seconds(), 3)))
    return (config.eachlabs_usd_per_second * seconds).quantize(Decimal("0.0000001"))


def _number(cost: Decimal) -> orjson.Fragment:
    """A JSON number written from the Decimal's digits: money never passes through a float."""
    return orjson.Fragment(str(cost).encode())


def _logs(job: Job, phase: JobPhase) -> str:
    if not job.started():
        return ""
    lines = [f"Using seed: {job.extra['seed']}", "  0%|          | 0/4 [00:00<?, ?it/s]"]
    if phase is JobPhase.SUCCEEDED:
        lines.append("100%|##########| 4/4 [00:00<00:00, 12.1it/s]")
    elif phase is JobPhase.FAILED:
        lines.append(f"Traceback (most recent call last):\nRuntimeError: {FAILURE_ERROR}")
    return "\n".join(lines)


SPEC = SimulatedVendor(
    name="eachlabs",
    image_format="png",
    auth=("bearer", "x-api-key"),
    routes=(
        route("POST", "/v1/prediction/", create, creates_output=True),
        route("GET", r"/v1/prediction/(?P<prediction_id>[^/]+)", get),
        route("GET", "/v1/models", list_models, auth=False),
        route("POST", r"/v1/prediction/(?P<prediction_id>[^/]+)/cancel", cancel),
    ),
    error_body=error_body,
    fault_kinds=FAULT_KINDS,
    job_cost=job_cost,
)
