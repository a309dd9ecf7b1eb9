"""The OpenAPI document at ``/schema/openapi.json`` documents the image request bodies."""

from __future__ import annotations

from typing import Any

from tests.proxy.api.served_app import Client


async def schema(client: Client) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def test_the_generations_body_is_documented_with_its_fields(client: Client) -> None:
    document = await schema(client)

    body = document["paths"]["/v1/images/generations"]["post"]["requestBody"]
    properties = body["content"]["application/json"]["schema"]["properties"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"]["required"] == ["prompt"]
    assert properties["prompt"]["type"] == "string"
    assert properties["n"]["type"] == "integer"
    assert set(properties["response_format"]["enum"]) == {"url", "b64_json"}
    assert {"size", "seed", "steps", "negative_prompt", "max_price_usd"} <= set(properties)


async def test_the_edits_body_is_multipart_and_requires_the_image(client: Client) -> None:
    document = await schema(client)

    body = document["paths"]["/v1/images/edits"]["post"]["requestBody"]
    form = body["content"]["multipart/form-data"]["schema"]
    assert set(form["required"]) == {"prompt", "image"}
    assert "strength" in form["properties"]


async def test_the_other_endpoints_are_listed(client: Client) -> None:
    paths = (await schema(client))["paths"]

    assert {"/v1/models", "/healthz", "/readyz", "/metrics", "/v1/images/files/{name}"} <= set(paths)
