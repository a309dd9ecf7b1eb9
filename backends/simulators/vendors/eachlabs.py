"""Eachlabs: predictions, created then polled, every input value sent as a string.

``POST /v1/prediction/`` -> ``{"status": "success", "message", "predictionID"}`` ("success"
means accepted). ``GET /v1/prediction/{id}`` -> ``{id, input, status, output, logs, error,
metrics: {predict_time, cost}, urls: {cancel, get}}`` with status starting -> processing ->
success | failed | cancelled; ``output`` is one URL, or a list when ``num_outputs`` > 1 (PNG).
Cancel is ``POST /v1/prediction/{id}/cancel`` (the ``urls.cancel`` given). Image-to-image takes
``image`` (a data URI or URL) and ``strength`` (0.3-0.8). An ``nsfw`` fault answers black
images with ``"nsfw_content_detected": [true, ...]``.
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
from backends.simulators.faults import FAULT_KINDS
from backends.simulators.fields import FieldReader, InvalidField
from backends.simulators.jobs import Job, JobPhase
from backends.simulators.outputs import Generation, start_job
from backends.simulators.protocol import Call, SimError, SimulatedVendor, route
from backends.simulators.render import decodable

MODEL, VERSION = "sdxl-lightning-4step", "0.0.1"
ERRORS = {
    400: "Invalid input for model",
    401: "Invalid or missing API key",
    402: "Insufficient balance",
    404: "Prediction not found",
    409: "Prediction already finished",
    429: "Rate limit exceeded",
    500: "Failed to create prediction",
    503: "Service unavailable",
}
SCHEDULERS = frozenset(
    {"DDIM", "DPMSolverMultistep", "HeunDiscrete", "KarrasDPM", "K_EULER_ANCESTRAL", "K_EULER", "PNDM"}
)
STATUSES = {
    JobPhase.QUEUED: "starting",
    JobPhase.DISPATCHING: "starting",
    JobPhase.RUNNING: "processing",
    JobPhase.SUCCEEDED: "success",
    JobPhase.FAILED: "failed",
    JobPhase.CANCELED: "cancelled",
}
FAILURE_ERROR = "CUDA error: an illegal memory access was encountered"


def error_body(error: SimError) -> dict[str, Any]:
    return {"error": error.message or ERRORS.get(error.status, f"HTTP {error.status}")}


async def _read(call: Call) -> Generation:
    try:
        body = call.request.json()
        fields = FieldReader(body)
        if fields.text("model") != MODEL or fields.text("version") != VERSION:
            raise SimError(400)
        data = FieldReader(body.get("input"), prefix="input.", strings=True)
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
    job = start_job(call, str(uuid.uuid4()), generation, seed=generation.seed)
    return json_response({"status": "success", "message": "Prediction created successfully", "predictionID": job.id})


async def get(call: Call) -> SimResponse:
    return json_response(_prediction_body(call, _job(call)))


async def cancel(call: Call) -> SimResponse:
    job = _job(call)
    call.state.cancels.append(job.id)
    if not job.cancel():
        raise SimError(409)
    return json_response({"status": "success", "message": "Prediction cancelled"})


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
    url = f"{call.request.base_url}/v1/prediction/{job.id}"
    body: dict[str, Any] = {
        "id": job.id,
        "input": job.input,
        "status": STATUSES[phase],
        "output": None,
        "logs": _logs(job, phase),
        "error": FAILURE_ERROR if phase is JobPhase.FAILED else None,
        "metrics": {"predict_time": predict_time, "cost": _cost(call, predict_time) if phase.terminal else None},
        "urls": {"cancel": f"{url}/cancel", "get": url},
        "created_at": job.timestamp(0.0),
    }
    if phase is JobPhase.SUCCEEDED:
        body["output"] = job.outputs[0] if len(job.outputs) == 1 else list(job.outputs)
        if job.nsfw:
            body["nsfw_content_detected"] = [True] * len(job.outputs)
    return body


def _cost(call: Call, predict_time: float | None) -> orjson.Fragment | None:
    """A JSON number written from the Decimal's digits: money never passes through a float."""
    if predict_time is None:
        return None
    cost = call.config.eachlabs_usd_per_second * Decimal(str(predict_time))
    return orjson.Fragment(str(cost.quantize(Decimal("0.0000001"))).encode())


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
    auth="x-api-key",
    routes=(
        route("POST", "/v1/prediction/", create, creates_output=True),
        route("GET", r"/v1/prediction/(?P<prediction_id>[^/]+)", get),
        route("GET", "/v1/models", list_models, auth=False),
        route("POST", r"/v1/prediction/(?P<prediction_id>[^/]+)/cancel", cancel),
    ),
    error_body=error_body,
    fault_kinds=FAULT_KINDS,
)
