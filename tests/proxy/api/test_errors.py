"""Every error leaves the gateway as OpenAI's envelope: ``{"error": {message, type, param, code}}``."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import VendorRateLimited, VendorUnavailable
from tests.proxy.api.served_app import Client, Vendors, serving
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to


def envelope(response: Any) -> dict[str, Any]:
    """The error object, after checking that the body is exactly OpenAI's shape."""
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["error"]
    error: dict[str, Any] = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    return error


async def test_malformed_json_is_a_400_invalid_json(client: Client) -> None:
    response = await client.post("/v1/images/generations", content=b'{"prompt": "a kite",',
                                 headers={"content-type": "application/json"})

    assert response.status_code == 400
    error = envelope(response)
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "invalid_json", None)


@pytest.mark.parametrize(("payload", "status", "param", "code"), [
    ({"n": 1}, 400, "prompt", "invalid_request"),
    ({"prompt": "a kite", "size": "1001x1001"}, 400, "size", "invalid_request"),
    ({"prompt": "a kite", "sampler": "euler"}, 400, "sampler", "unknown_parameter"),
    ({"prompt": "a kite", "model": "dall-e-3"}, 404, "model", "model_not_found"),
    (["a kite"], 400, None, "invalid_request"),
])
async def test_validation_errors_name_the_field(client: Client, payload: object, status: int, param: str | None,
                                                code: str, vendors: Vendors) -> None:
    response = await client.post("/v1/images/generations", json=payload)

    assert response.status_code == status
    error = envelope(response)
    assert (error["param"], error["code"]) == (param, code)
    assert vendors.text_only.calls == []


async def test_a_body_over_max_body_bytes_is_a_413() -> None:
    async with serving([route_to(ScriptedBackend("runflow"))], max_body_bytes=1024) as client:
        response = await client.post("/v1/images/generations", json={"prompt": "k" * 2048})

    assert response.status_code == 413
    error = envelope(response)
    assert error["code"] == "payload_too_large"


async def test_an_unknown_path_is_a_404(client: Client) -> None:
    response = await client.get("/v1/no-such-thing")

    assert response.status_code == 404
    error = envelope(response)
    assert (error["type"], error["code"]) == ("invalid_request_error", "not_found")


async def test_a_wrong_method_is_a_405_client_error(client: Client) -> None:
    response = await client.get("/v1/images/generations")

    assert response.status_code == 405
    error = envelope(response)
    assert (error["type"], error["code"]) == ("invalid_request_error", None)
    assert "POST" in response.headers["allow"]
    assert response.headers["x-request-id"]


async def test_an_unexpected_failure_is_a_500_in_the_same_envelope(client: Client, vendors: Vendors) -> None:
    async def explode(*_: object) -> None:
        raise RuntimeError("bug in an adapter")

    vendors.text_only.generate = explode  # type: ignore[method-assign, assignment]

    response = await client.post("/v1/images/generations", json={"prompt": "a kite"})

    assert response.status_code == 500
    error = envelope(response)
    assert (error["type"], error["code"]) == ("server_error", "internal_error")
    assert "bug in an adapter" not in error["message"]


async def test_no_backend_available_is_a_503_with_retry_after(client: Client, vendors: Vendors) -> None:
    for vendor in (vendors.text_only, vendors.editor):
        vendor.script.extend([VendorUnavailable("down", status=500)] * 3)

    response = await client.post("/v1/images/generations", json={"prompt": "a kite"})

    assert response.status_code == 503
    assert envelope(response)["code"] == "no_backend_available"
    assert int(response.headers["retry-after"]) >= 1
    assert int(response.headers["retry-after-ms"]) >= 1


async def test_every_vendor_rate_limiting_is_a_429_with_the_smallest_retry_after(
    client: Client, vendors: Vendors
) -> None:
    vendors.text_only.script.extend([VendorRateLimited("slow", status=429, retry_after=40)] * 3)
    vendors.editor.script.extend([VendorRateLimited("slow", status=429, retry_after=35)] * 3)

    response = await client.post("/v1/images/generations", json={"prompt": "a kite"})

    assert response.status_code == 429
    error = envelope(response)
    assert (error["type"], error["code"]) == ("requests", "upstream_rate_limited")
    assert response.headers["retry-after"] == "35"


async def test_an_idempotency_key_reused_for_another_request_is_a_409_the_sdk_will_not_retry(
    client: Client,
) -> None:
    first = await client.post("/v1/images/generations", json={"prompt": "a kite"}, headers={"idempotency-key": "k1"})
    reused = await client.post("/v1/images/generations", json={"prompt": "a boat"}, headers={"idempotency-key": "k1"})

    assert first.status_code == 200
    assert reused.status_code == 409
    assert envelope(reused)["code"] == "idempotency_key_reused"
    assert reused.headers["x-should-retry"] == "false"
