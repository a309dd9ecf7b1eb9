"""The OpenAPI documentation of the image endpoints: bodies from the validating models narrowed
to what the deployment's routes serve, the answer with its ``x-boltgate-*`` headers, every error
status, and the headers the endpoints read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from litestar.openapi.spec import (
    Encoding,
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    Parameter,
    RequestBody,
    Schema,
)

from proxy.api.openai_request import PRICE_CEILING_HEADER, PRICE_PATTERN, OpenAIEditForm, OpenAIGenerationBody
from proxy.api.openapi import RATE_LIMIT_HEADERS, Answer, documented, header, to_openapi
from proxy.api.schemas import ImagesResponseBody
from proxy.api.security import PUBLIC
from proxy.api.served_limits import ServedLimits
from proxy.images.store import MEDIA_TYPES
from proxy.routing.choice import HEDGE_HEADER, HEDGE_SWITCHES, POLICIES, POLICY_HEADER, ROUTE_HEADER, ROUTE_PATTERN

IMAGE_ERRORS = (400, 401, 402, 403, 404, 409, 413, 429, 500, 503)

SERVED_HEADERS = {
    "x-boltgate-backend": header("The vendor (or GPU worker) that made the images", required=True),
    "x-boltgate-region": header("Its region", required=True),
    "x-boltgate-attempts": header("Attempts made across routes", pattern=r"^[0-9]+$", required=True),
    "x-boltgate-seed": header("The seed used; absent when the backend that served takes none",
                              pattern=r"^[0-9]+$"),
    "x-boltgate-cost-usd": header("What the client was charged", required=True),
    "x-boltgate-upstream-cost-usd": header("What the vendor charges for it; only where expose_upstream_cost is on"),
    "x-boltgate-credits": header("The charge in credits", required=True),
    "x-boltgate-vendor-reported-cost-usd": header("The cost the vendor reported, when it did (and "
                                                  "expose_upstream_cost is on)"),
    "x-boltgate-run-seconds": header("The run time the vendor reported, when it did"),
    "x-boltgate-vendor-request-id": header("The vendor's id for the request, when it gave one"),
    "x-boltgate-idempotent-replay": header("true when this is a replay of an Idempotency-Key's answer"),
    "x-boltgate-hedged-to": header("VENDOR/REGION of the route that raced the first one, when the request was "
                                   "hedged"),
    **RATE_LIMIT_HEADERS,
}

PARAMETERS = (
    Parameter(name="Idempotency-Key", param_in="header", required=False, schema=Schema(type=OpenAPIType.STRING),
              description="A replay with the same key answers the same images at no cost (24 h)"),
    Parameter(name=PRICE_CEILING_HEADER, param_in="header", required=False,
              schema=Schema(type=OpenAPIType.STRING, pattern=PRICE_PATTERN),
              description="Skip routes priced above this many USD (the body's max_price_usd wins)"),
    Parameter(name=POLICY_HEADER, param_in="header", required=False,
              schema=Schema(type=OpenAPIType.STRING, enum=list(POLICIES)),
              description="How the router orders routes for this request (the body's routing_policy wins); "
                          "403 where the key may not ask for it"),
    Parameter(name=HEDGE_HEADER, param_in="header", required=False,
              schema=Schema(type=OpenAPIType.STRING, enum=list(HEDGE_SWITCHES)),
              description="on: race a slow route with the next (within the gateway's hedge budgets); off: "
                          "never; absent: the gateway's hedging setting. 403 where the key may not ask"),
)

IMAGES_ANSWER = Answer(ImagesResponseBody, "The images, how they were served and what they cost", SERVED_HEADERS)


def json_body(limits: ServedLimits | None) -> RequestBody:
    source = OpenAIGenerationBody.model_json_schema()
    schema = to_openapi(limits.document(source) if limits is not None else source)
    return RequestBody(content={"application/json": OpenAPIMediaType(schema=schema)}, required=True)


def form_body(limits: ServedLimits | None) -> RequestBody:
    """The edit form: the form model's fields as text parts (a form has no null: absent is the
    default; fields refused with any value are left out) and the ``image`` file."""
    source = OpenAIEditForm.model_json_schema()
    if limits is not None:
        source = limits.document(source)
    properties: dict[str, Any] = {}
    for name, node in source["properties"].items():
        variants = [variant for variant in node.get("anyOf", []) if variant.get("type") != "null"]
        if node.get("type") == "null":
            continue
        if variants:
            node = {key: value for key, value in node.items() if key not in ("anyOf", "default")}
            node.update(variants[0] if len(variants) == 1 else {"anyOf": variants})
        properties[name] = node
    form = to_openapi({**source, "properties": properties})
    assert form.properties is not None
    form.properties["image"] = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY,
                                      description="The source image: one PNG, JPEG or WebP file")
    form.required = [*(form.required or []), "image"]
    image_types = Encoding(content_type=", ".join(sorted(set(MEDIA_TYPES.values()))))
    return RequestBody(content={"multipart/form-data": OpenAPIMediaType(schema=form, encoding={"image": image_types})},
                       required=True)


def route_parameter(pins: Sequence[str]) -> Parameter:
    """``x-boltgate-route``, naming the routes that serve the endpoint (any well-formed name
    where the routes are not known, and a pin of an unknown route is a 400)."""
    schema = (Schema(type=OpenAPIType.STRING, enum=sorted(set(pins))) if pins
              else Schema(type=OpenAPIType.STRING, pattern=ROUTE_PATTERN))
    return Parameter(name=ROUTE_HEADER, param_in="header", required=False, schema=schema,
                     description="VENDOR or VENDOR/REGION: serve on that route or answer why not, never elsewhere "
                                 "(400 when it cannot serve the request; 403 where the key may not pin)")


def generations_operation(limits: ServedLimits | None, pins: Sequence[str] = ()) -> type[Operation]:
    return documented(IMAGES_ANSWER, errors=IMAGE_ERRORS, parameters=(*PARAMETERS, route_parameter(pins)),
                      body=json_body(limits))


def edits_operation(limits: ServedLimits | None, pins: Sequence[str] = ()) -> type[Operation]:
    return documented(IMAGES_ANSWER, errors=IMAGE_ERRORS, parameters=(*PARAMETERS, route_parameter(pins)),
                      body=form_body(limits))


DOWNLOAD_OPERATION = documented(
    Answer({media_type: OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY))
            for media_type in sorted(set(MEDIA_TYPES.values()))},
           "The image, as long as image_ttl_s allows"),
    errors=(404, 500), security=PUBLIC,  # its name is the secret (shared as a link); any other name: 404
)
DOWNLOAD_HEAD_OPERATION = documented(
    Answer(None, "The head GET would send, without the image: its Content-Type, Content-Length and Cache-Control",
           headers={"content-length": header("The image's size in bytes", pattern=r"^[0-9]+$", required=True)}),
    errors=(404, 500), security=PUBLIC,
)
