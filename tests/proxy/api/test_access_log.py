"""One access line per request: request id, status, backend, region, attempts, latency, cost, the
error's code; never the prompt unless ``log_prompts`` says so."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.proxy.api.served_app import Client, Vendors, serving


def access_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "boltgate.access"]


def fields(record: logging.LogRecord) -> dict[str, Any]:
    found: dict[str, Any] = record.fields  # type: ignore[attr-defined]
    return found


async def test_a_served_request_has_one_line_saying_how_it_was_served(
        client: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="boltgate.access")

    response = await client.post("/v1/images/generations", json={"prompt": "a secret kite", "user": "u-7"},
                                 headers={"x-request-id": "req-42"})

    (line,) = access_lines(caplog)
    assert line.getMessage() == "POST /v1/images/generations"
    logged = fields(line)
    assert logged["request_id"] == "req-42" == response.headers["x-request-id"]
    assert logged["status"] == 200
    assert (logged["backend"], logged["region"], logged["attempts"]) == ("runflow", "eu", "1")
    assert logged["cost_usd"] == response.headers["x-boltgate-cost-usd"]
    assert logged["latency_ms"] >= 0
    assert logged["user"] == "u-7"
    assert "prompt" not in logged
    assert "a secret kite" not in caplog.text


async def test_a_refused_request_names_its_error(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="boltgate.access")

    await client.post("/v1/images/generations", json={"prompt": "a kite", "style": "vivid"})
    await client.get("/no/such/path")

    refused, missing = (fields(line) for line in access_lines(caplog))
    assert (refused["status"], refused["error"]) == (400, "unsupported_parameter")
    assert (missing["status"], missing["error"]) == (404, "not_found")


async def test_the_prompt_is_logged_only_when_a_setting_says_so(vendors: Vendors,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="boltgate.access")
    async with serving(vendors.routes(), log_prompts=True) as client:
        await client.post("/v1/images/generations", json={"prompt": "a secret kite"})

    (line,) = access_lines(caplog)
    assert fields(line)["prompt"] == "a secret kite"


async def test_probes_are_logged_at_debug(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="boltgate.access")

    await client.get("/healthz")

    (line,) = access_lines(caplog)
    assert line.levelno == logging.DEBUG
