"""``POST /v1/images/generations``, ``POST /v1/images/edits`` and the image downloads.

Handlers read the raw body and decode it with orjson: the request model does the validation,
once, and names the offending field. Generations take only the ``gateway`` (its billing
included): each injected dependency costs microseconds on the hottest path. Edits also take the
``settings`` (the upload's pixel cap); parsing their multipart body costs far more.
"""

from __future__ import annotations

from typing import Any

import orjson
from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile

from core.errors import InvalidRequest, NotFound
from core.request import ImageRequest
from pricing.keys import KeyRecord
from proxy.api.disconnect import unless_disconnected
from proxy.api.injected import InjectedGateway, InjectedImageStore, InjectedSettings
from proxy.api.openai_request import to_image_request
from proxy.api.openapi import EDITS_OPERATION, GENERATIONS_OPERATION
from proxy.gateway import Gateway
from proxy.images.store import MEDIA_TYPES
from proxy.images.validate import validate_init_image

AnyRequest = Request[Any, Any, Any]


MAX_PRICE_HEADER = "x-boltgate-max-price-usd"


def _with_price_ceiling(request: AnyRequest, fields: dict[str, Any]) -> dict[str, Any]:
    """A ceiling may come as a header instead of a body field (the body wins)."""
    ceiling = request.headers.get(MAX_PRICE_HEADER)
    if ceiling is not None and "max_price_usd" not in fields:
        fields["max_price_usd"] = ceiling
    return fields


async def _serve(request: AnyRequest, gateway: Gateway, key: KeyRecord,
                 image_request: ImageRequest) -> Response[bytes]:
    base_url = gateway.links.base_url(request.scope["scheme"], request.headers.get("host"),
                                      request.scope.get("server"))
    served = await unless_disconnected(request, gateway.generate(
        image_request, base_url=base_url, key=key,
        idempotency_key=request.headers.get("idempotency-key"),
    ))
    return Response(content=orjson.dumps(served.body), media_type="application/json", headers=served.headers)


@post("/v1/images/generations", status_code=200, operation_class=GENERATIONS_OPERATION)
async def create_image(request: AnyRequest, gateway: InjectedGateway) -> Response[bytes]:
    key = await gateway.billing.authenticate(request.headers.get("authorization"))
    raw = await request.body()
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"We could not parse the JSON body of your request: {exc.msg}",
                             code="invalid_json") from exc
    if isinstance(payload, dict):
        _with_price_ceiling(request, payload)
    return await _serve(request, gateway, key, to_image_request(payload))


@post("/v1/images/edits", status_code=200, operation_class=EDITS_OPERATION)
async def edit_image(request: AnyRequest, gateway: InjectedGateway, settings: InjectedSettings) -> Response[bytes]:
    key = await gateway.billing.authenticate(request.headers.get("authorization"))
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequest("/v1/images/edits takes multipart/form-data with an 'image' file",
                             param="image")
    try:
        form = await request.form()
    except (UnicodeDecodeError, LookupError) as exc:  # Litestar decodes each text field with its charset
        raise InvalidRequest("A form field is not text in its declared charset (UTF-8 by default)",
                             code="invalid_form_encoding") from exc
    fields: dict[str, Any] = {}
    upload: UploadFile | None = None
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            if name in ("image", "image[]") and upload is None:
                upload = value
            continue
        fields[name] = value
    if upload is None:
        raise InvalidRequest("An 'image' file is required", param="image")
    init_image = await validate_init_image(await upload.read(), settings.max_upload_pixels)
    image_request = to_image_request(_with_price_ceiling(request, fields), init_image=init_image)
    return await _serve(request, gateway, key, image_request)


@get("/v1/images/files/{name:str}")
async def download_image(name: str, image_store: InjectedImageStore) -> Response[bytes]:
    data = await image_store.get(name)
    if data is None:
        raise NotFound("This image does not exist or has expired (images live 60 minutes)", param="name")
    media_type = MEDIA_TYPES[name.rsplit(".", 1)[-1]]
    return Response(content=data, media_type=media_type, headers={"cache-control": "private, max-age=3600"})
