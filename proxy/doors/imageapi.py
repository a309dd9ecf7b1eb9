"""imageapi.org's generate API, served at ``/vendors/imageapi``: one call, one image.

``POST /vendors/imageapi/api/v1/generate`` with ``Authorization: Bearer <gateway key>`` and
``{prompt, model?, width, height, num_inference_steps, negative_prompt?}`` (their model page's
cURL example, ``backends/vendors/contracts/imageapi/request-curl.json``) answers when the image
is ready, as imageapi's own call does (their examples wait up to 120 s for the answer), through
``Gateway.generate`` like ``/v1/images/generations``. Their page shows nothing of the answer or
the errors, so both are assumed, as the simulator and the adapter assume them: ``{"data":
[{"url": ...}]}`` (a PNG from the gateway's image store) and ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

from typing import Any

import orjson
from litestar import Response, Router, post

from core.errors import BoltgateError, InvalidRequest
from core.request import resolve_model
from proxy.api.injected import InjectedGateway
from proxy.doors.runs import AnyRequest, authenticate, error_handler, json_body, serve_now
from proxy.doors.spec import DoorSpec, InputMapping

INPUT = InputMapping(
    fields={"prompt": "prompt", "width": "width", "height": "height", "num_inference_steps": "steps",
            "negative_prompt": "negative_prompt"},
    accepted={},
    output_format="png",
)


def error_body(error: BoltgateError) -> dict[str, Any]:
    return {"error": {"code": error.code or "error", "message": error.message}}


IMAGEAPI = DoorSpec(name="imageapi", auth=("bearer",), error_body=error_body, invalid_status=400,
                    source="imageapi.org/models/sdxl-lightning (cURL); answer and errors assumed")


@post("/api/v1/generate", status_code=200)
async def generate(request: AnyRequest, gateway: InjectedGateway) -> Response[bytes]:
    key = await authenticate(request, IMAGEAPI, gateway.billing)
    body = await json_body(request)
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object")
    values = dict(body)
    model = values.pop("model", None)
    if model is not None and not isinstance(model, str):
        raise InvalidRequest("model must be a string", param="model")
    resolve_model(model)
    image_request = INPUT.to_request(values)
    served = await serve_now(request, gateway, key, image_request)
    return Response(content=orjson.dumps({"data": [{"url": item["url"]} for item in served.body["data"]]}),
                    media_type="application/json", headers=served.headers)


ROUTER = Router(path="/vendors/imageapi", include_in_schema=False, route_handlers=[generate],
                exception_handlers={BoltgateError: error_handler(IMAGEAPI)})
