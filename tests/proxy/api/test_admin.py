"""The admin API creates, lists and revokes client keys behind the admin token."""

from __future__ import annotations

import pytest

from pricing.key_names import NAME_PATTERN
from proxy.api.admin import NewKey
from tests.proxy.api.served_app import serving
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to

ADMIN = {"Authorization": "Bearer admin-secret"}
BODY = {"prompt": "a lighthouse", "size": "256x256", "response_format": "b64_json"}


async def test_a_created_key_works_until_it_is_revoked() -> None:
    async with serving([route_to(ScriptedBackend("callmissed"))], admin_token="admin-secret") as client:
        created = await client.post("/v1/admin/keys", json={"name": "team", "budget_credits": "100"}, headers=ADMIN)
        assert created.status_code == 201
        key, key_id = created.json()["key"], created.json()["id"]
        assert key.startswith("bg-") and key not in key_id

        served = await client.post("/v1/images/generations", json=BODY, headers={"Authorization": f"Bearer {key}"})
        assert served.status_code == 200
        listed = (await client.get("/v1/admin/keys", headers=ADMIN)).json()["data"]
        rows = [(entry["id"], entry["budget_credits"], entry["revoked"]) for entry in listed]
        assert rows == [(key_id, "100", False)]

        assert (await client.delete(f"/v1/admin/keys/{key_id}", headers=ADMIN)).status_code == 200
        refused = await client.post("/v1/images/generations", json=BODY, headers={"Authorization": f"Bearer {key}"})
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "invalid_api_key"


async def test_the_admin_token_is_checked() -> None:
    async with serving([route_to(ScriptedBackend("callmissed"))], admin_token="admin-secret") as client:
        missing = await client.get("/v1/admin/keys")
        wrong = await client.get("/v1/admin/keys", headers={"Authorization": "Bearer guess"})
        bad_body = await client.post("/v1/admin/keys", json={"name": ""}, headers=ADMIN)
        unknown = await client.delete(f"/v1/admin/keys/{'0' * 64}", headers=ADMIN)
        malformed = await client.delete("/v1/admin/keys/nope", headers=ADMIN)
        empty = await client.post("/v1/admin/keys", headers=ADMIN)
    assert missing.status_code == 401
    assert wrong.status_code == 403
    assert (bad_body.status_code, bad_body.json()["error"]["param"]) == (400, "name")
    assert unknown.status_code == 404
    assert (malformed.status_code, malformed.json()["error"]["param"]) == (400, "key_id")
    assert empty.status_code == 400
    assert empty.json()["error"]["message"].startswith("The body must be a JSON object such as {")


async def test_without_an_admin_token_the_admin_api_is_off() -> None:
    async with serving([route_to(ScriptedBackend("callmissed"))]) as client:
        response = await client.get("/v1/admin/keys", headers=ADMIN)
        anonymous = await client.get("/v1/admin/keys")
    assert response.status_code == 403
    assert "BOLTGATE_ADMIN_TOKEN" in response.json()["error"]["message"]
    assert anonymous.status_code == 401  # no credentials at all: the adminToken scheme is missing


@pytest.mark.parametrize("budget", ["1e999999", "Infinity", "NaN", "-1", "1e13", 1e308, "0.0000001e-999999"])
async def test_a_budget_that_is_not_a_sane_amount_is_refused(budget: object) -> None:
    async with serving([route_to(ScriptedBackend("callmissed"))], admin_token="admin-secret") as client:
        created = await client.post("/v1/admin/keys", json={"name": "team", "budget_credits": budget}, headers=ADMIN)
        listed = (await client.get("/v1/admin/keys", headers=ADMIN)).json()["data"]
    assert created.status_code == 400, created.text
    assert created.json()["error"]["param"] == "budget_credits"
    assert listed == []


async def test_a_budget_of_minus_zero_is_stored_as_zero() -> None:
    async with serving([route_to(ScriptedBackend("callmissed"))], admin_token="admin-secret") as client:
        created = await client.post("/v1/admin/keys", json={"name": "team", "budget_credits": -0.0}, headers=ADMIN)
        listed = (await client.get("/v1/admin/keys", headers=ADMIN)).json()["data"]
    assert created.status_code == 201, created.text
    assert created.json()["budget_credits"] == "0.0"
    assert [entry["budget_credits"] for entry in listed] == ["0.0"]


@pytest.mark.parametrize("name", ["nul\u0000", "two\nlines", "tab\there", "bell\u0007", "del\u007f", "c1\u0085",
                                  "line\u2028separator"])
async def test_a_key_name_with_a_control_character_is_refused(name: str) -> None:
    """Names reach log lines, CSV exports and metric labels, where a control character forges or
    breaks a line."""
    async with serving([route_to(ScriptedBackend("callmissed"))], admin_token="admin-secret") as client:
        created = await client.post("/v1/admin/keys", json={"name": name}, headers=ADMIN)
        listed = (await client.get("/v1/admin/keys", headers=ADMIN)).json()["data"]
    assert created.status_code == 400, created.text
    error = created.json()["error"]
    assert (error["param"], error["code"]) == ("name", "invalid_request")
    assert "control character" in error["message"]
    assert listed == []


async def test_a_key_name_in_any_script_with_spaces_is_accepted() -> None:
    async with serving([route_to(ScriptedBackend("callmissed"))], admin_token="admin-secret") as client:
        created = await client.post("/v1/admin/keys", json={"name": "équipe Ünïcode 团队"}, headers=ADMIN)
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "équipe Ünïcode 团队"


async def test_the_largest_budget_allowed_still_serves() -> None:
    async with serving([route_to(ScriptedBackend("callmissed"))], admin_token="admin-secret") as client:
        created = await client.post("/v1/admin/keys", json={"name": "rich", "budget_credits": "1000000000000"},
                                    headers=ADMIN)
        key = created.json()["key"]
        served = await client.post("/v1/images/generations", json=BODY, headers={"Authorization": f"Bearer {key}"})
        usage = await client.get("/v1/usage", headers={"Authorization": f"Bearer {key}"})
    assert (created.status_code, served.status_code, usage.status_code) == (201, 200, 200)


async def test_a_key_is_created_with_its_rate_limits_and_routing_and_lists_them() -> None:
    new = {"name": "team", "limits": {"requests_per_minute": 5},
           "routing": {"policies": ["cheapest"], "pin_routes": False, "hedge_budget_usd_per_day": "2.5"}}
    async with serving([route_to(ScriptedBackend("callmissed"))], admin_token="admin-secret") as client:
        created = await client.post("/v1/admin/keys", json=new, headers=ADMIN)
        listed = (await client.get("/v1/admin/keys", headers=ADMIN)).json()["data"]
    assert created.status_code == 201, created.text
    shown = {"requests_per_minute": 5, "images_per_minute": None, "concurrent_requests": None}
    routing = {"policies": ["cheapest"], "pin_routes": False, "hedging": True, "hedge_budget_usd_per_day": "2.5"}
    assert (created.json()["limits"], created.json()["routing"]) == (shown, routing)
    assert [(entry["limits"], entry["routing"]) for entry in listed] == [(shown, routing)]


@pytest.mark.parametrize(("nested", "param"), [
    ({"routing": {"hedge_budget_usd_per_day": "1e400"}}, "routing.hedge_budget_usd_per_day"),
    ({"routing": {"policies": ["random"]}}, "routing.policies.0"),
    ({"limits": {"requests_per_minute": 10**30}}, "limits.requests_per_minute"),
    ({"limits": {"requests_per_minute": "5"}}, "limits.requests_per_minute"),
])
async def test_a_limit_or_routing_field_that_is_not_sane_is_refused_by_its_name(nested: dict[str, object],
                                                                                 param: str) -> None:
    async with serving([route_to(ScriptedBackend("callmissed"))], admin_token="admin-secret") as client:
        created = await client.post("/v1/admin/keys", json={"name": "team", **nested}, headers=ADMIN)
        listed = (await client.get("/v1/admin/keys", headers=ADMIN)).json()["data"]
    assert (created.status_code, created.json()["error"]["param"]) == (400, param)
    assert listed == []


async def test_a_whole_number_written_as_a_float_is_a_rate_limit() -> None:
    """JSON Schema's integer takes 5.0, so the API does too."""
    async with serving([route_to(ScriptedBackend("callmissed"))], admin_token="admin-secret") as client:
        created = await client.post("/v1/admin/keys", json={"name": "team", "limits": {"concurrent_requests": 5.0}},
                                    headers=ADMIN)
    assert created.status_code == 201, created.text
    assert created.json()["limits"]["concurrent_requests"] == 5


def test_the_document_states_the_name_rule_as_its_pattern() -> None:
    """What a client (or a schema fuzzer) reads is ``NAME_PATTERN``, which agrees with
    ``printable_name`` on every character (``tests/pricing/test_key_names.py``)."""
    assert NewKey.model_json_schema()["properties"]["name"]["pattern"] == NAME_PATTERN
