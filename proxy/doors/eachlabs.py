"""Eachlabs' prediction API, served at ``/vendors/eachlabs``: create a prediction, then poll it.

``POST /vendors/eachlabs/v1/prediction/`` with the key as ``Authorization: Bearer`` or the older
``X-API-Key`` and ``{"model": "sdxl-lightning-4step", "version": "0.0.1", "input": {...}}``
(every input value may be a string, as their example sends them) answers ``{"status":
"success", "message", "predictionID"}``; ``GET /vendors/eachlabs/v1/prediction/{id}`` answers
``{id, input, status, output, logs, metrics: {predict_time, cost}, urls: {cancel, get}}`` with
``output`` one URL, or a list when ``num_outputs`` > 1 (PNG, their output format). Errors are
``{"error": message}``, as their Create Prediction and Authentication pages show. Shapes:
``backends/vendors/contracts/eachlabs/``.

The prediction is finished when the create answers (see ``proxy.doors.runs``), so a cancel finds
it finished: 409, as a cancel of a finished prediction. Taken with the only values the gateway
serves: ``scheduler`` (``K_EULER``: Lightning runs on Euler) and ``disable_safety_checker`` (both
values; the gateway's own ``content_filter_action`` decides what a flagged image does). Refused:
``webhook_url``/``webhook_secret`` (no call back from this door), ``image``/``strength`` (use
``/v1/images/edits``). Assumed: ``metrics.cost`` is the gateway's price in USD.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from litestar import Response, Router, get, post

from core.errors import BoltgateError, InvalidRequest
from core.request import resolve_model
from proxy.api.injected import InjectedGateway, InjectedSettings
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


def _prediction(run: DoorRun, base_url: str) -> dict[str, Any]:
    url = f"{base_url}/vendors/eachlabs/v1/prediction/{run.id}"
    return {
        "id": run.id,
        "input": run.input,
        "status": "success",
        "output": run.image_urls[0] if len(run.image_urls) == 1 else run.image_urls,
        "logs": None,
        "metrics": {"predict_time": round(run.seconds, 3), "cost": orjson.Fragment(run.cost_usd.encode())},
        "urls": {"cancel": f"{url}/cancel", "get": url},
    }


@post("/v1/prediction/", status_code=200)
async def create_prediction(request: AnyRequest, gateway: InjectedGateway,
                            settings: InjectedSettings) -> Response[bytes]:
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
    run, headers = await DoorRuns(gateway, settings.image_ttl_s).serve(
        request, key, image_request, door="eachlabs", run_id=str(uuid.uuid4()), input=body["input"])
    answer = {"status": "success", "message": "Prediction created successfully", "predictionID": run.id}
    return Response(content=orjson.dumps(answer), media_type="application/json", headers=headers)


@get("/v1/prediction/{prediction_id:str}")
async def get_prediction(request: AnyRequest, prediction_id: str, gateway: InjectedGateway,
                         settings: InjectedSettings) -> Response[bytes]:
    key = await authenticate(request, EACHLABS, gateway.billing)
    run = await DoorRuns(gateway, settings.image_ttl_s).find("eachlabs", prediction_id, key, "Prediction")
    body = _prediction(run, gateway.links.for_request(request))
    return Response(content=orjson.dumps(body), media_type="application/json")


@post("/v1/prediction/{prediction_id:str}/cancel", status_code=200)
async def cancel_prediction(request: AnyRequest, prediction_id: str, gateway: InjectedGateway,
                            settings: InjectedSettings) -> Response[bytes]:
    key = await authenticate(request, EACHLABS, gateway.billing)
    await DoorRuns(gateway, settings.image_ttl_s).find("eachlabs", prediction_id, key, "Prediction")
    raise InvalidRequest("Prediction already finished", status_code=409, code="already_finished")


ROUTER = Router(path="/vendors/eachlabs", include_in_schema=False,
                route_handlers=[create_prediction, get_prediction, cancel_prediction],
                exception_handlers={BoltgateError: error_handler(EACHLABS)})
