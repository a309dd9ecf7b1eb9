"""Health probes: one free request per vendor, judged from the status, against the simulators."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backends.base import ProbedBackend
from backends.simulators import Fault, SimulatorConfig, SimulatorServer
from backends.vendors.backend import VendorBackend
from backends.vendors.probes import PROBES, ProbeSpec
from backends.vendors.registry import VENDOR_SPECS

SIMULATED = ["callmissed", "runflow", "eachlabs", "imageapi", "aigateway"]
KEY = "probe-test-key"


@pytest.fixture(params=SIMULATED)
def simulator(request: pytest.FixtureRequest) -> Iterator[SimulatorServer]:
    server = SimulatorServer(request.param, SimulatorConfig(api_key=KEY)).start()
    yield server
    server.stop()


def backend_on(server: SimulatorServer, api_key: str = KEY) -> VendorBackend:
    return VendorBackend(VENDOR_SPECS[server.vendor], region="r1", base_url=server.base_url, api_key=api_key)


def test_every_vendor_has_a_probe_with_its_source() -> None:
    assert set(PROBES) == set(VENDOR_SPECS)
    for spec in PROBES.values():
        assert spec.source and spec.method in ("GET", "HEAD")
    assert isinstance(VendorBackend(VENDOR_SPECS["runflow"], region="r", base_url="http://x", api_key=None),
                      ProbedBackend)


@pytest.mark.parametrize(("status", "ok", "key_refused"), [
    (200, True, False), (204, True, False), (429, True, False), (401, False, True), (402, False, True),
    (403, False, True), (404, False, False), (500, False, False), (503, False, False),
])
def test_a_key_checking_probe_reads_the_status(status: int, ok: bool, key_refused: bool) -> None:
    outcome = ProbeSpec("GET", lambda _: "/v1/balance", checks_key=True, source="test").verdict(status, 0.1)

    assert (outcome.ok, outcome.key_refused) == (ok, key_refused)
    assert outcome.verifies_key == (ok and status != 429)
    assert outcome.payment_refused == (status == 402)


@pytest.mark.parametrize(("status", "ok"), [(200, True), (404, True), (405, True), (401, True), (500, False),
                                            (503, False)])
def test_a_reachability_probe_passes_on_any_answer_below_500(status: int, ok: bool) -> None:
    outcome = ProbeSpec("HEAD", lambda _: "/", checks_key=False, source="test").verdict(status, 0.1)

    assert (outcome.ok, outcome.key_refused, outcome.verifies_key) == (ok, False, False)


async def test_a_healthy_vendor_passes_its_probe_without_a_generation(simulator: SimulatorServer) -> None:
    backend = backend_on(simulator)

    outcome = await backend.probe(5)
    await backend.aclose()

    assert outcome.ok, outcome.detail
    assert outcome.verifies_key == PROBES[simulator.vendor].checks_key
    assert [(r.method, r.path) for r in simulator.requests] == [
        (PROBES[simulator.vendor].method, PROBES[simulator.vendor].path(backend.options).split("?")[0])]


async def test_a_vendor_answering_503_fails_its_probe(simulator: SimulatorServer) -> None:
    simulator.inject(Fault(kind="status", status=503))
    backend = backend_on(simulator)

    outcome = await backend.probe(5)
    await backend.aclose()

    assert not outcome.ok and not outcome.key_refused
    assert "503" in outcome.detail


async def test_an_unreachable_vendor_fails_its_probe(simulator: SimulatorServer) -> None:
    simulator.refuse_connections()
    backend = backend_on(simulator)

    outcome = await backend.probe(5)
    await backend.aclose()

    assert not outcome.ok
    assert "unreachable" in outcome.detail


async def test_a_vendor_that_hangs_fails_its_probe_within_the_timeout(simulator: SimulatorServer) -> None:
    simulator.inject(Fault(kind="hang"))
    backend = backend_on(simulator)

    outcome = await backend.probe(0.3)
    await backend.aclose()

    assert not outcome.ok
    assert outcome.seconds < 5


@pytest.mark.parametrize("vendor", ["runflow", "aigateway"])
async def test_a_wrong_key_is_refused_where_the_probe_checks_it(vendor: str) -> None:
    server = SimulatorServer(vendor, SimulatorConfig(api_key=KEY)).start()
    try:
        backend = backend_on(server, api_key="revoked-key")
        outcome = await backend.probe(5)
        await backend.aclose()
    finally:
        server.stop()

    assert (outcome.ok, outcome.key_refused) == (False, True)
