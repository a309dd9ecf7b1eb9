"""Each simulator answers only in shapes its vendor's documentation shows.

Every answer a simulator gives (a create, every poll of a job through its life, a cancel, a
synchronous answer, each documented error status) has its key paths compared with the union of
that vendor's documented examples of the same role (``backends/vendors/contracts``). A role a
vendor documents no example of (imageapi's answers) stays assumed and is not compared.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from backends.simulators import Fault, SimulatorConfig, SimulatorServer
from backends.simulators.vendors import SPECS as SIMULATED
from backends.vendors import contracts
from backends.vendors.contracts import shape
from backends.vendors.messages import HttpAnswer
from backends.vendors.registry import VENDOR_SPECS
from core.request import ImageRequest

Seen = dict[str, list[Any]]
JOB_VENDORS = sorted(name for name in SIMULATED if VENDOR_SPECS[name].job is not None)


def documented(vendor: str) -> dict[str, tuple[frozenset[str], tuple[str, ...]]]:
    """Per role, the documented key paths and the paths left open (opaque)."""
    paths: dict[str, set[str]] = defaultdict(set)
    opaque: dict[str, set[str]] = defaultdict(set)
    for example in contracts.examples(vendor):
        opaque[example.role] |= set(example.opaque)
    for example in contracts.examples(vendor):
        paths[example.role] |= shape(example.body, tuple(opaque[example.role]))
    return {role: (frozenset(found), tuple(opaque[role])) for role, found in paths.items()}


@pytest.fixture(scope="module")
def exercised() -> Iterator[dict[str, Seen]]:
    """Every simulator, driven once (module-wide: starting five servers is the slow part)."""
    seen: dict[str, Seen] = {}
    config = SimulatorConfig(queued_s=0.02, running_s=0.02, url_ttl_s=60)
    for vendor in sorted(SIMULATED):
        with SimulatorServer(vendor, config) as server:
            seen[vendor] = exercise(server)
    yield seen


def send(client: httpx.Client, sim: SimulatorServer, method: str, path: str, body: Any = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {sim.api_key}"}
    return client.request(method, sim.base_url + path, headers=headers,
                          content=orjson.dumps(body) if body is not None else None)


def exercise(sim: SimulatorServer) -> Seen:
    """Drive the simulator through what the gateway meets: success, failure, a stuck job, a cancel,
    and every error status the vendor documents."""
    spec = VENDOR_SPECS[sim.vendor]
    call = spec.build_request(ImageRequest(prompt="a paper boat"), spec.default_options)
    seen: Seen = defaultdict(list)
    with httpx.Client(timeout=5) as client:
        if spec.job is None:
            seen["answer"].append(send(client, sim, call.method, call.path, call.json).raise_for_status().json())
        else:
            for fault in (None, Fault("fail_midway"), Fault("stuck_queued")):
                if fault is not None:
                    sim.inject(fault)
                created = send(client, sim, call.method, call.path, call.json).raise_for_status()
                seen["create"].append(created.json())
                job_id = spec.job.job_id(_answer(created))
                for _ in range(40):
                    polled = send(client, sim, "GET", spec.job.poll(job_id, spec.default_options).path).json()
                    seen["poll"].append(polled)
                    if fault is not None and fault.kind == "stuck_queued" and len(seen["poll"]) > 2:
                        break
                    if spec.job.read_state(_answer(polled)).phase != "pending":
                        break
                    time.sleep(0.01)
                if spec.job.cancel is not None and fault is not None and fault.kind == "stuck_queued":
                    cancel = spec.job.cancel(job_id, spec.default_options)
                    seen["cancel"].append(send(client, sim, cancel.method, cancel.path).json())
        for example in contracts.examples(sim.vendor):
            if example.role == "error" and example.status is not None:
                sim.inject(Fault("status", status=example.status))
                seen["error"].append(send(client, sim, call.method, call.path, call.json).json())
    return seen


def _answer(response: httpx.Response | Any) -> HttpAnswer:
    body = response.content if isinstance(response, httpx.Response) else orjson.dumps(response)
    return HttpAnswer(200, {}, body)


@pytest.mark.parametrize("vendor", sorted(SIMULATED))
def test_every_answer_has_a_documented_shape(exercised: dict[str, Seen], vendor: str) -> None:
    docs = documented(vendor)
    seen = exercised[vendor]
    assert bool(seen["error"]) == ("error" in docs), "every documented error status was asked for"
    for role, bodies in seen.items():
        if role not in docs:
            continue  # nothing documented: the shape stays assumed (listed in the vendor's behaviours)
        allowed, opaque = docs[role]
        for body in bodies:
            extra = shape(body, opaque) - allowed
            assert not extra, f"{vendor} {role} answer has undocumented {sorted(extra)}: {body}"


@pytest.mark.parametrize("vendor", JOB_VENDORS)
def test_job_simulators_use_only_documented_statuses(exercised: dict[str, Seen], vendor: str) -> None:
    statuses: dict[str, str] = {}  # every documented status table (a docs page and a schema may list some apart)
    for example in contracts.examples(vendor):
        if example.role == "statuses":
            statuses |= example.statuses
    key = "status_code" if vendor == "runflow" else "status"
    emitted = {body[key] for body in exercised[vendor]["poll"]}
    assert emitted <= set(statuses)
    assert {"pending", "succeeded", "failed"} == {statuses[status] for status in emitted}
