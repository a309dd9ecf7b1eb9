"""Runflow's door: a create's ``metadata`` is echoed back by every poll, so it is kept with the
run; what cannot be kept (nested past any use, or larger than a note) is refused as Runflow
refuses a bad body, a 422 naming the field, with nothing held."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from proxy.doors.runflow import MAX_METADATA_BYTES, MAX_METADATA_DEPTH
from tests.proxy.api.served_app import serving
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to

ALICE = {"Authorization": "Bearer bg-alice"}
KEYS = {"bg-alice": {"name": "alice", "budget_credits": "100"}}
CREATE = "/vendors/runflow/v1/models/bytedance/sd-xl-lightning/runs"
INPUT = {"prompt": "a fox", "width": 256, "height": 256}


def nested(levels: int) -> Any:
    value: Any = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize("metadata", [nested(MAX_METADATA_DEPTH + 1), nested(500),
                                      {"note": "x" * MAX_METADATA_BYTES}])
async def test_metadata_nested_too_deep_or_too_large_is_a_422_naming_it_and_holds_nothing(metadata: Any) -> None:
    async with serving([route_to(ScriptedBackend("runflow"))], api_keys=KEYS) as client:
        refused = await client.post(CREATE, json={"input": INPUT, "metadata": metadata}, headers=ALICE)
        usage = (await client.get("/v1/usage", headers=ALICE)).json()

    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "VALIDATION_ERROR"
    assert refused.json()["errors"][0]["field"] == "metadata"
    assert Decimal(usage["reserved_usd"]) == 0


async def test_steps_given_as_a_boolean_is_a_422_naming_it_and_holds_nothing() -> None:
    async with serving([route_to(ScriptedBackend("runflow"))], api_keys=KEYS) as client:
        refused = await client.post(CREATE, json={"input": {**INPUT, "steps": True}}, headers=ALICE)
        usage = (await client.get("/v1/usage", headers=ALICE)).json()

    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "VALIDATION_ERROR"
    assert refused.json()["errors"][0]["field"] == "input.steps"
    assert Decimal(usage["reserved_usd"]) == 0


async def test_metadata_within_the_limits_is_kept_and_echoed_by_the_poll() -> None:
    metadata = {"order": "o-1", "deep": nested(MAX_METADATA_DEPTH - 1)}
    async with serving([route_to(ScriptedBackend("runflow"))], api_keys=KEYS) as client:
        created = await client.post(CREATE, json={"input": INPUT, "metadata": metadata}, headers=ALICE)
        polled = await client.get(f"/vendors/runflow/v1/runs/{created.json()['id']}", headers=ALICE)

    assert created.status_code == 200, created.text
    assert polled.json()["metadata"] == metadata
