"""The OpenAPI document says who may call each operation, and the gateway does as it says: with
keys required, every operation that states a scheme without ``{}`` refuses a caller without
``Authorization`` (401/403), and every public one lets it in."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from openapi_spec_validator import validate

from proxy.api.app import create_app
from proxy.settings import Settings
from tests.proxy.api.test_openapi import schema

PATH_VALUES = {"{job_id}": "job_AAAAAAAAAAAAAAAAAAAAAA", "{model}": "sdxl-lightning", "{key_id}": "0" * 64,
               "{name}": "0" * 32 + ".png"}


def filled(path: str) -> str:
    for placeholder, value in PATH_VALUES.items():
        path = path.replace(placeholder, value)
    return path


def operations(document: dict[str, Any]) -> list[tuple[str, str, list[dict[str, list[str]]]]]:
    """``(method, path, security)`` for every operation, with the document's default applied."""
    default = document["security"]
    return [(method, path, operation.get("security", default))
            for path, item in document["paths"].items() for method, operation in item.items()
            if method in ("get", "post", "delete")]


async def test_the_schemes_are_bearer_tokens_and_a_key_is_optional_while_none_is_required() -> None:
    async with AsyncTestClient(create_app(Settings(simulators="off"))) as client:
        document = await schema(client)
    schemes = document["components"]["securitySchemes"]
    by_path = {(method, path): security for method, path, security in operations(document)}

    assert {name: (scheme["type"], scheme["scheme"]) for name, scheme in schemes.items()} == {
        "clientKey": ("http", "bearer"), "adminToken": ("http", "bearer"), "metricsToken": ("http", "bearer")}
    assert document["security"] == [{"clientKey": []}, {}]
    assert by_path["post", "/v1/images/jobs"] == [{"clientKey": []}, {}]
    assert by_path["get", "/metrics"] == [] and by_path["get", "/v1/models"] == []
    assert by_path["get", "/v1/admin/keys"] == [{"adminToken": []}]


async def test_with_keys_required_what_the_document_says_needs_a_token_refuses_a_caller_without_one() -> None:
    settings = Settings(simulators="off", api_keys={"bg-x": {"name": "x"}}, admin_token="admin")
    async with AsyncTestClient(create_app(settings)) as client:
        document = await schema(client)
        answers = {(method, path, str(security)): (await client.request(method.upper(), filled(path),
                                                                         json={})).status_code
                   for method, path, security in operations(document)}

    assert document["security"] == [{"clientKey": []}]
    private = {operation: status for operation, status in answers.items() if operation[2] != "[]"}
    public = {operation: status for operation, status in answers.items() if operation[2] == "[]"}
    assert len(private) >= 11 and len(public) == 5  # models (2), healthz, readyz, image files
    assert all(status in (401, 403) for status in private.values()), private
    assert not [status for status in public.values() if status in (401, 403)], public


@pytest.mark.parametrize("settings", [
    {},
    {"api_keys": {"bg-x": {"name": "x"}}, "admin_token": "admin", "backends_view": "admin"},
], ids=["open", "keys"])
async def test_the_served_document_is_valid_openapi(settings: dict[str, Any]) -> None:
    async with AsyncTestClient(create_app(Settings(simulators="off", **settings))) as client:
        document = await schema(client)

    validate(document)
    assert document["openapi"].startswith("3.1")
