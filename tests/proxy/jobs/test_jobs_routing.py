"""A job asks the router what a synchronous generation may: a pinned route (``x-boltgate-route``)
and hedging (``x-boltgate-hedge``), read by the same parser, checked against its key at submit
and kept with the job for its run."""

from __future__ import annotations

import orjson

from proxy.jobs.record import HeldCredits, JobRecord
from proxy.jobs.service import job_routing
from proxy.routing.choice import RoutingChoice
from tests.proxy.api.served_app import serving
from tests.proxy.jobs.test_jobs_api import ALICE, BODY, KEYS, finished, spent
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to

NARROW = {"Authorization": "Bearer bg-narrow"}
ROUTING_KEYS = {**KEYS, "bg-narrow": {"name": "narrow", "budget_credits": "100",
                                      "routing": {"pin_routes": False, "hedging": False}}}


async def test_a_pinned_job_is_served_by_its_vendor_although_another_comes_first() -> None:
    first, pinned = ScriptedBackend("runflow", "eu"), ScriptedBackend("eachlabs", "us")
    routes = [route_to(first, priority=10), route_to(pinned, priority=20)]
    async with serving(routes, api_keys=KEYS) as client:
        by_vendor = await client.post("/v1/images/jobs", json=BODY, headers={**ALICE, "x-boltgate-route": "eachlabs"})
        by_region = await client.post("/v1/images/jobs", json=BODY,
                                      headers={**ALICE, "x-boltgate-route": "eachlabs/us", "x-boltgate-hedge": "off"})
        served = [(await finished(client, answer.json()["id"]))["served"] for answer in (by_vendor, by_region)]

    assert (by_vendor.status_code, by_region.status_code) == (202, 202)
    assert [(job["vendor"], job["region"]) for job in served] == [("eachlabs", "us")] * 2
    assert first.calls == [] and len(pinned.calls) == 2


async def test_a_pin_or_hedge_the_key_may_not_ask_for_is_a_403_at_submit_and_no_job() -> None:
    async with serving([route_to(ScriptedBackend("runflow", "eu"))], api_keys=ROUTING_KEYS) as client:
        pinned = await client.post("/v1/images/jobs", json=BODY, headers={**NARROW, "x-boltgate-route": "runflow"})
        hedged = await client.post("/v1/images/jobs", json=BODY, headers={**NARROW, "x-boltgate-hedge": "on"})
        held = await spent(client, NARROW)

    assert (pinned.status_code, pinned.json()["error"]["param"]) == (403, "x-boltgate-route")
    assert (hedged.status_code, hedged.json()["error"]["param"]) == (403, "x-boltgate-hedge")
    assert held == (0, 0)  # nothing was held: no job was made


async def test_a_bad_pin_or_hedge_switch_is_a_400_at_submit_and_no_job() -> None:
    async with serving([route_to(ScriptedBackend("runflow", "eu"))], api_keys=KEYS) as client:
        malformed = await client.post("/v1/images/jobs", json=BODY, headers={**ALICE, "x-boltgate-route": "Run Flow!"})
        unknown = await client.post("/v1/images/jobs", json=BODY, headers={**ALICE, "x-boltgate-route": "callmissed"})
        switch = await client.post("/v1/images/jobs", json=BODY, headers={**ALICE, "x-boltgate-hedge": "maybe"})
        held = await spent(client)

    assert [(answer.status_code, answer.json()["error"]["param"]) for answer in (malformed, unknown, switch)] == [
        (400, "x-boltgate-route"), (400, "x-boltgate-route"), (400, "x-boltgate-hedge")]
    assert "runflow/eu" in unknown.json()["error"]["message"]
    assert held == (0, 0)


def test_the_pin_and_hedge_survive_the_record_s_round_trip_through_the_store() -> None:
    held = HeldCredits("r1", 1000, None, None)
    record = JobRecord("job_x", "alice", {**BODY, "routing_policy": "cheapest"}, "http://h", held,
                       route="eachlabs/us", hedge=False)

    stored = JobRecord.from_json(record.to_json())

    assert job_routing(stored.body, stored.route, stored.hedge) == RoutingChoice("cheapest", "eachlabs", "us", False)
    older = orjson.loads(record.to_json())
    del older["route"], older["hedge"]  # a job queued before the fields existed runs unpinned
    assert job_routing(BODY, JobRecord.from_json(orjson.dumps(older)).route) == RoutingChoice()
