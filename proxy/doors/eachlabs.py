"""Eachlabs' prediction API, served at ``/vendors/eachlabs``: create a prediction, then poll it.

``POST /vendors/eachlabs/v1/prediction/`` with the key as ``Authorization: Bearer`` or the older
``X-API-Key`` and ``{"model": "sdxl-lightning-4step", "version": "0.0.1", "input": {...}}``
(every input value may be a string, as their example sends them) answers ``{"status":
"success", "message", "predictionID"}``; ``GET /vendors/eachlabs/v1/prediction/{id}`` answers
``{id, input, status, output, logs, metrics: {predict_time, cost}, urls: {cancel, get}}`` with
``output`` one URL, or a list when ``num_outputs`` > 1 (PNG, their output format). Errors are
``{"error": message}``, as their Create Prediction and Authentication pages show. Shapes:
``backends/vendors/contracts/eachlabs/``.

The create answers at once, as Eachlabs' does: the prediction is an async job of the gateway
(``proxy.doors.runs``), its credits held at create and charged once when it succeeds. A poll maps
the job's state onto Eachlabs' ``status`` (``STATUSES``); a failed prediction is ``error`` with
``output.error_code``/``output.error_message``, as their docs report one. ``urls.cancel`` cancels
a prediction still queued or running (the job's cancel: nothing charged; a finished one is a 409).
Taken with the only values the gateway
serves: ``scheduler`` (``K_EULER``: Lightning runs on Euler) and ``disable_safety_checker`` (both
values; the gateway's own ``content_filter_action`` decides what a flagged image does). Refused:
``webhook_url``/``webhook_secret`` (no call back from this door), ``image``/``strength`` (use
``/v1/images/edits``). Assumed: ``metrics.cost`` is the gateway's price in USD.
"""

from __future__ import annotations

from typing import Any

import orjson
from litestar import Response, Router, get, post

from core.errors import BoltgateError, InvalidRequest
from core.request import resolve_model
from proxy.api.injected import InjectedGateway, InjectedJobs
from proxy.doors.runs import AnyRequest, DoorRun, DoorRuns, authenticate, error_handler, json_body
from proxy.doors.spec import DoorSpec, InputMapping

MODEL, VERSION = "sdxl-lightning-4step", "0.0.1"
INPUT = InputMapping(
    fields={"prompt": "prompt", "negative_prompt": "negative_prompt", "seed": "seed", "width": "width",
            "height": "height", "num_outputs": "n", "num_inference_steps": "steps",
            "guidance_scale": "guidance_scale"},
    accepted={"scheduler": frozenset({"K_EULER"}), "disable_safety_checker": frozenset({"true", "false", True, False})},
    refused={"image": "image-to-image goes through POST /v1/images/edits",
             "strength": "image-to-image goes through POST /v1/images/edits"},
    output_format="png",
    prefix="input.",
)
TOP_LEVEL = frozenset({"model", "version", "input"})
REFUSED_TOP_LEVEL = frozenset({"webhook_url", "webhook_secret"})


def error_body(error: BoltgateError) -> dict[str, Any]:
    return {"error": error.message}


EACHLABS = DoorSpec(name="eachlabs", auth=("bearer", "x-api-key"), error_body=error_body, invalid_status=400,
                    source="docs.eachlabs.ai Create Prediction, Get Prediction, Authentication")


STATUSES = {"queued": "created", "running": "processing", "succeeded": "success", "failed": "error",
            "cancelled": "cancelled"}
"""A job's state -> Eachlabs' ``status`` (their Get Prediction page; contracts ``statuses.json``)."""
CANCELLED = {"status": "success", "message": "Prediction canceled successfully"}
"""Their answer to a cancel (contracts ``cancel-success.json``)."""


def _output(run: DoorRun) -> Any:
    if run.status == "succeeded":
        return run.image_urls[0] if len(run.image_urls) == 1 else list(run.image_urls)
    if run.error is not None:
        return {"error_code": run.error.get("code"), "error_message": run.error.get("message")}
    return None


def _prediction(run: DoorRun, base_url: str) -> dict[str, Any]:
    url = f"{base_url}/vendors/eachlabs/v1/prediction/{run.id}"
    seconds = run.seconds
    return {
        "id": run.id,
        "input": run.input,
        "status": STATUSES[run.status],
        "output": _output(run),
        "logs": None,
        "metrics": {"predict_time": None if seconds is None else round(seconds, 3),
                    "cost": orjson.Fragment(run.cost_usd.encode())},
        "urls": {"cancel": f"{url}/cancel", "get": url},
    }


@post("/v1/prediction/", status_code=200)
async def create_prediction(request: AnyRequest, gateway: InjectedGateway, jobs: InjectedJobs) -> Response[bytes]:
    key = await authenticate(request, EACHLABS, gateway.billing)
    body = await json_body(request)
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object with 'model', 'version' and 'input'")
    for name in body:
        if name in REFUSED_TOP_LEVEL:
            raise InvalidRequest(f"'{name}' is not supported by this gateway: poll the prediction instead",
                                 param=name, code="unsupported_parameter")
        if name not in TOP_LEVEL:
            raise InvalidRequest(f"Unrecognized field: '{name}'", param=name, code="unknown_parameter")
    for name in ("model", "input"):
        if name not in body:
            raise InvalidRequest(f"{name} field is required", param=name)
    if not isinstance(body["model"], str):
        raise InvalidRequest("model must be a string", param="model")
    resolve_model(body["model"])
    if body.get("version", VERSION) != VERSION:
        raise InvalidRequest(f"version must be '{VERSION}'", param="version")
    image_request = INPUT.to_request(body["input"])
    run = await DoorRuns("eachlabs", jobs).submit(request, key, image_request, input=body["input"])
    answer = {"status": "success", "message": "Prediction created successfully", "predictionID": run.id}
    return Response(content=orjson.dumps(answer), media_type="application/json", headers=run.create_headers)


@get("/v1/prediction/{prediction_id:str}")
async def get_prediction(request: AnyRequest, prediction_id: str, gateway: InjectedGateway,
                         jobs: InjectedJobs) -> Response[bytes]:
    key = await authenticate(request, EACHLABS, gateway.billing)
    run = await DoorRuns("eachlabs", jobs).find(prediction_id, key, "Prediction")
    body = _prediction(run, gateway.links.for_request(request))
    return Response(content=orjson.dumps(body), media_type="application/json", headers=run.headers)


@post("/v1/prediction/{prediction_id:str}/cancel", status_code=200)
async def cancel_prediction(request: AnyRequest, prediction_id: str, gateway: InjectedGateway,
                            jobs: InjectedJobs) -> Response[bytes]:
    key = await authenticate(request, EACHLABS, gateway.billing)
    await DoorRuns("eachlabs", jobs).cancel(prediction_id, key, "Prediction")
    return Response(content=orjson.dumps(CANCELLED), media_type="application/json")


ROUTER = Router(path="/vendors/eachlabs", include_in_schema=False,
                route_handlers=[create_prediction, get_prediction, cancel_prediction],
                exception_handlers={BoltgateError: error_handler(EACHLABS)})
