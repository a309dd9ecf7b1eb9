"""Every response carries ``x-request-id``; image requests are counted in the metrics."""

from __future__ import annotations

import re

from tests.proxy.api.served_app import Client


async def test_a_client_request_id_is_echoed(client: Client) -> None:
    response = await client.post("/v1/images/generations", json={"prompt": "a kite"},
                                 headers={"x-request-id": "req-abc-123"})

    assert response.headers["x-request-id"] == "req-abc-123"


async def test_a_request_id_is_generated_when_none_is_sent(client: Client) -> None:
    first = await client.get("/healthz")
    second = await client.get("/healthz")

    assert re.fullmatch(r"[0-9a-f]{32}", first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_error_responses_carry_the_request_id_too(client: Client) -> None:
    response = await client.get("/nowhere", headers={"x-request-id": "trace-9"})

    assert response.status_code == 404
    assert response.headers["x-request-id"] == "trace-9"


async def test_an_overlong_request_id_is_cut_to_128_characters(client: Client) -> None:
    response = await client.get("/healthz", headers={"x-request-id": "r" * 300})

    assert response.headers["x-request-id"] == "r" * 128


def requests_total(metrics_text: str, endpoint: str, status: str) -> float:
    pattern = rf'^boltgate_requests_total\{{endpoint="{endpoint}",status="{status}"\}} (\S+)$'
    match = re.search(pattern, metrics_text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def test_image_requests_are_counted_by_endpoint_and_status(client: Client) -> None:
    before = (await client.get("/metrics")).text

    await client.post("/v1/images/generations", json={"prompt": "a kite"})
    await client.post("/v1/images/generations", json={"prompt": ""})
    after = (await client.get("/metrics")).text

    assert "boltgate_requests_total" in after
    assert requests_total(after, "generations", "200") == requests_total(before, "generations", "200") + 1
    assert requests_total(after, "generations", "400") == requests_total(before, "generations", "400") + 1


async def test_other_endpoints_are_not_counted(client: Client) -> None:
    before = (await client.get("/metrics")).text
    await client.get("/healthz")
    after = (await client.get("/metrics")).text

    assert 'endpoint="healthz"' not in after
    assert before.count("boltgate_requests_total{") == after.count("boltgate_requests_total{")
