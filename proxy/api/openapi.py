"""OpenAPI for the image endpoints, whose handlers read raw bodies (for speed).

The documented request body is generated from the same pydantic model that validates it, so the
schema at ``/schema`` cannot drift from what the gateway accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

from proxy.api.openai_request import OpenAIImageBody
from proxy.routing.choice import POLICIES


def _schema(node: dict[str, Any]) -> Schema:
    variants = [v for v in node.get("anyOf", [node]) if v.get("type") != "null"]
    chosen = variants[0] if variants else {}
    kind = chosen.get("type", "string")
    return Schema(
        type=OpenAPIType(kind),
        enum=chosen.get("enum"),
        minimum=chosen.get("minimum"),
        maximum=chosen.get("maximum"),
        description=node.get("description"),
    )


def _body_schema(*, with_image: bool) -> Schema:
    source = OpenAIImageBody.model_json_schema()
    properties: dict[str, Any] = {name: _schema(node) for name, node in source["properties"].items()}
    required = list(source.get("required", []))
    properties["routing_policy"] = Schema(  # read by the handler, not the image model
        type=OpenAPIType.STRING, enum=list(POLICIES),
        description="How the router orders routes for this request, within what the key allows")
    if with_image:
        properties["image"] = Schema(type=OpenAPIType.STRING, format=None, description="PNG, JPEG or WebP")
        properties["strength"] = Schema(type=OpenAPIType.NUMBER, minimum=0, maximum=1)
        required.append("image")
    return Schema(type=OpenAPIType.OBJECT, properties=properties, required=required)


def _operation_with_body(media_type: str, *, with_image: bool) -> type[Operation]:
    """An ``Operation`` class (what Litestar's ``operation_class`` takes) documenting the body."""

    @dataclass
    class _WithBody(Operation):
        def __post_init__(self) -> None:
            schema = _body_schema(with_image=with_image)
            self.request_body = RequestBody(content={media_type: OpenAPIMediaType(schema=schema)}, required=True)

    return _WithBody


GENERATIONS_OPERATION = _operation_with_body("application/json", with_image=False)
EDITS_OPERATION = _operation_with_body("multipart/form-data", with_image=True)
