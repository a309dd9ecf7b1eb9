"""The OpenAPI document at ``/schema/openapi.json`` tells the truth: request bodies carry the
constraints the gateway enforces (narrowed to what its routes serve), every answer and every
error status is documented with its schema, and the content types are the real ones."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from backends.base import Capabilities
from core.request import MAX_SEED
from proxy.api.app import create_app
from proxy.api.openapi import to_openapi
from proxy.api.served_limits import ServedLimits
from proxy.settings import Settings
from tests.proxy.api.served_app import Client, serving
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to


async def schema(client: Client) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def variant(node: dict[str, Any]) -> dict[str, Any]:
    """The non-null variant of an optional field's schema."""
    variants: list[dict[str, Any]] = [item for item in node.get("anyOf", [node]) if item.get("type") != "null"]
    assert len(variants) == 1
    return variants[0]


async def test_the_generations_body_carries_the_enforced_constraints(client: Client) -> None:
    body = (await schema(client))["paths"]["/v1/images/generations"]["post"]["requestBody"]
    form = body["content"]["application/json"]["schema"]
    properties = form["properties"]

    assert body["required"] is True
    assert form["required"] == ["prompt"]
    assert form["additionalProperties"] is False
    assert (properties["prompt"]["minLength"], properties["prompt"]["maxLength"]) == (1, 4000)
    assert "pattern" in properties["prompt"]
    assert (variant(properties["seed"])["minimum"], variant(properties["seed"])["maximum"]) == (0, MAX_SEED)
    assert variant(properties["guidance_scale"])["maximum"] == 20
    assert set(variant(properties["response_format"])["enum"]) == {"url", "b64_json"}
    assert properties["style"]["type"] == "null" and "Not supported" in properties["style"]["description"]


async def test_the_bounds_are_those_the_routes_serve(client: Client) -> None:
    # The fixture's routes: Runflow's defaults (steps 1-50 here, n 1-4) and an image-to-image one.
    paths = (await schema(client))["paths"]
    generation = paths["/v1/images/generations"]["post"]["requestBody"]["content"]["application/json"]["schema"]

    assert variant(generation["properties"]["n"])["maximum"] == 4
    assert (variant(generation["properties"]["steps"])["minimum"],
            variant(generation["properties"]["steps"])["maximum"]) == (1, 50)


async def test_a_deployment_documents_its_own_limits_and_no_edits_without_an_editing_route() -> None:
    small = ScriptedBackend("runflow", capabilities=Capabilities(max_steps=12, max_n=1, max_side=1024))
    async with serving([route_to(small)]) as client:
        paths = (await schema(client))["paths"]
    properties = paths["/v1/images/generations"]["post"]["requestBody"]["content"]["application/json"]["schema"][
        "properties"]

    assert variant(properties["steps"])["maximum"] == 12
    assert variant(properties["n"])["maximum"] == 1
    assert re.fullmatch(properties["size"]["pattern"], "1024x1024")
    assert not re.fullmatch(properties["size"]["pattern"], "1032x1024")
    assert "/v1/images/edits" not in paths


async def test_the_edits_form_is_multipart_with_one_image_file(client: Client) -> None:
    body = (await schema(client))["paths"]["/v1/images/edits"]["post"]["requestBody"]
    form = body["content"]["multipart/form-data"]["schema"]

    assert set(form["required"]) == {"prompt", "image"}
    assert form["properties"]["image"]["format"] == "binary"
    assert form["properties"]["strength"]["maximum"] == 1
    assert "style" not in form["properties"]  # refused with any value: a form cannot send null
    assert "image/png" in body["content"]["multipart/form-data"]["encoding"]["image"]["contentType"]


async def test_every_answer_and_error_is_documented_with_its_schema(client: Client) -> None:
    post = (await schema(client))["paths"]["/v1/images/generations"]["post"]
    answers = post["responses"]

    assert set(answers) == {"200", "400", "401", "402", "403", "404", "409", "413", "429", "500", "503"}
    ok = answers["200"]["content"]["application/json"]["schema"]
    assert ok["type"] == "object" and {"created", "data", "billing"} <= set(ok["required"])
    assert "seed" in ok["properties"] and "seed" not in ok["required"]  # absent when the vendor drew its own
    assert "usage" not in ok["properties"]
    assert ok["properties"]["data"]["type"] == "array"
    assert answers["200"]["headers"]["x-boltgate-backend"]["required"] is True
    for status, answer in answers.items():
        if status != "200":
            error = answer["content"]["application/json"]["schema"]
            assert error["required"] == ["error"], status
    assert "retry-after" in answers["503"]["headers"]
    assert {parameter["name"] for parameter in post["parameters"]} >= {"Idempotency-Key", "x-boltgate-max-price-usd"}


async def test_what_a_request_may_ask_of_the_router_is_documented(client: Client) -> None:
    document = await schema(client)
    post = document["paths"]["/v1/images/generations"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]
    parameters = {parameter["name"]: parameter["schema"] for parameter in post["parameters"]}
    answers = post["responses"]

    assert set(body["properties"]["routing_policy"]["anyOf"][0]["enum"]) == {"priority", "cheapest", "fastest",
                                                                              "balanced"}
    assert parameters["x-boltgate-routing-policy"]["enum"] == ["priority", "cheapest", "fastest", "balanced"]
    assert parameters["x-boltgate-route"]["enum"] == ["eachlabs", "eachlabs/us", "runflow", "runflow/eu"]
    edits = document["paths"]["/v1/images/edits"]["post"]["parameters"]
    assert [p["schema"]["enum"] for p in edits if p["name"] == "x-boltgate-route"] == [["eachlabs", "eachlabs/us"]]
    assert "on" in parameters["x-boltgate-hedge"]["enum"]
    assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after",
            "retry-after-ms"} <= set(answers["429"]["headers"])
    assert {"x-ratelimit-remaining-requests", "x-boltgate-hedged-to"} <= set(answers["200"]["headers"])
    backends = document["paths"]["/v1/backends"]["get"]["responses"]
    assert {"200", "401", "403"} <= set(backends)
    assert "state" in backends["200"]["content"]["application/json"]["schema"]["properties"]["data"]["items"][
        "properties"]


async def test_metrics_are_documented_as_text(client: Client) -> None:
    metrics = (await schema(client))["paths"]["/metrics"]["get"]["responses"]["200"]

    assert list(metrics["content"]) == ["text/plain"]
    assert (await client.get("/metrics")).headers["content-type"].startswith("text/plain")


async def test_the_other_endpoints_are_listed_with_their_answers(client: Client) -> None:
    paths = (await schema(client))["paths"]

    assert {"/v1/models", "/v1/models/{model}", "/healthz", "/readyz", "/metrics", "/v1/images/files/{name}",
            "/v1/usage", "/v1/admin/keys", "/v1/admin/keys/{key_id}"} <= set(paths)
    assert paths["/v1/models"]["get"]["responses"]["200"]["content"]["application/json"]["schema"][
        "properties"]["data"]["type"] == "array"
    assert set(paths["/v1/admin/keys"]) == {"get", "post"}
    assert "201" in paths["/v1/admin/keys"]["post"]["responses"]
    assert "503" in paths["/readyz"]["get"]["responses"]


async def test_options_lists_every_method_of_a_path() -> None:
    app = create_app(Settings(simulators="off", admin_token="t"))
    async with AsyncTestClient(app) as client:
        keys = await client.options("/v1/admin/keys")
        key = await client.options(f"/v1/admin/keys/{'0' * 64}")
        generations = await client.options("/v1/images/generations")

    assert keys.status_code == 204
    assert keys.headers["allow"] == "GET, OPTIONS, POST"
    assert key.headers["allow"] == "DELETE, OPTIONS"
    assert generations.headers["allow"] == "OPTIONS, POST"


def test_a_schema_keyword_the_converter_does_not_know_is_an_error() -> None:
    with pytest.raises(ValueError, match="'ge'"):
        to_openapi({"type": "integer", "ge": 0})


def test_fixed_step_counts_are_documented_as_an_enum_and_size_auto_needs_1024() -> None:
    limits = ServedLimits.of([Capabilities(fixed_steps=frozenset({1, 2, 4, 8}), max_side=768)])
    assert limits is not None

    documented = limits.document({"properties": {
        "steps": {"anyOf": [{"type": "integer"}, {"type": "null"}]}, "n": {"anyOf": [{"type": "integer"}]},
        "size": {"type": "string"}, "quality": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    }})

    assert variant(documented["properties"]["steps"])["enum"] == [1, 2, 4, 8]
    assert not documented["properties"]["size"]["pattern"].startswith("^(auto|")
    assert set(variant(documented["properties"]["quality"])["enum"]) == set(
        ["low", "medium", "high", "xhigh", "max", "standard", "hd", "auto"])


async def test_fields_no_route_takes_are_documented_as_null_and_refused() -> None:
    # Like aigateway: no seed, steps, negative_prompt or guidance field (the vendor picks its own).
    bare = Capabilities(seed=False, steps=False, negative_prompt=False, guidance=False)
    async with serving([route_to(ScriptedBackend("aigateway", capabilities=bare))]) as client:
        properties = (await schema(client))["paths"]["/v1/images/generations"]["post"]["requestBody"][
            "content"]["application/json"]["schema"]["properties"]
        refused = await client.post("/v1/images/generations", json={"prompt": "a fox", "seed": 7})
        served = await client.post("/v1/images/generations", json={"prompt": "a fox", "quality": "auto",
                                                                     "negative_prompt": ""})

    for name in ("seed", "steps", "num_inference_steps", "guidance_scale"):
        assert properties[name]["type"] == "null", name
    assert variant(properties["quality"])["enum"] == ["auto"]
    assert variant(properties["negative_prompt"])["maxLength"] == 0
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "unsupported_request"
    assert served.status_code == 200, served.text


def test_a_step_count_is_documented_only_from_routes_that_take_one() -> None:
    limits = ServedLimits.of([Capabilities(steps=False, seed=False), Capabilities(max_steps=12, seed=False)])
    assert limits is not None

    assert limits.steps == frozenset(range(1, 13))
    assert limits.fields == frozenset({"negative_prompt", "guidance_scale"})
    assert limits.default_steps
