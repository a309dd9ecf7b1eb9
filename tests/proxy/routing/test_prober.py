"""Health probes: at most one per route per interval across replicas, feeding the breakers."""

from __future__ import annotations

import asyncio

from backends.base import ProbeOutcome
from core.state.memory import MemoryStateStore
from proxy.routing.health import CircuitState, RouteHealth
from proxy.routing.prober import HealthProber, last_probe
from proxy.settings import BreakerConfig, ProbeConfig
from tests.proxy.deaf_task import Deaf, ends_within
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to


def replicas(count: int, backend: ScriptedBackend, interval_s: float = 30.0) -> list[HealthProber]:
    """``count`` probers sharing one store, as replicas sharing Redis do."""
    store = MemoryStateStore()
    route = route_to(backend)
    return [HealthProber([route], RouteHealth(store, BreakerConfig(failure_threshold=1)),
                         ProbeConfig(interval_s=interval_s)) for _ in range(count)]


async def test_only_one_replica_probes_a_route_per_interval() -> None:
    backend = ScriptedBackend("v")
    a, b = replicas(2, backend, interval_s=0.1)
    route = a.routes[0]

    first = await a.probe_once(route)
    skipped = await b.probe_once(route)
    again = await a.probe_once(route)
    await asyncio.sleep(0.12)
    next_interval = await b.probe_once(route)

    assert first is not None and first.ok
    assert skipped is None and again is None
    assert next_interval is not None
    assert backend.probes == 2


async def test_a_failed_probe_opens_the_route_and_a_passing_one_brings_it_back_half_open() -> None:
    backend = ScriptedBackend("v")
    backend.probe_script.extend([ProbeOutcome(False, "GET answered 503")])
    (prober,) = replicas(1, backend, interval_s=0.05)
    route = prober.routes[0]

    await prober.probe_once(route)
    opened = await prober.health.status(route)
    await asyncio.sleep(0.06)
    await prober.probe_once(route)
    back = await prober.health.status(route)

    assert (opened.state, opened.reason) == (CircuitState.OPEN, "probe failed: GET answered 503")
    assert back.state is CircuitState.HALF_OPEN


async def test_a_refused_key_quarantines_and_only_a_key_checking_pass_lifts_it() -> None:
    backend = ScriptedBackend("v")
    backend.probe_script.extend([ProbeOutcome(False, "GET answered 401", key_refused=True),
                                 ProbeOutcome(True, "HEAD answered 200"),
                                 ProbeOutcome(True, "GET answered 200", verifies_key=True)])
    (prober,) = replicas(1, backend, interval_s=0.02)
    route = prober.routes[0]
    states = []
    for _ in range(3):
        await prober.probe_once(route)
        states.append((await prober.health.status(route)).state)
        await asyncio.sleep(0.03)

    assert states == [CircuitState.QUARANTINED, CircuitState.QUARANTINED, CircuitState.HALF_OPEN]


async def test_a_payment_refusal_on_a_probe_quarantines_only_briefly() -> None:
    backend = ScriptedBackend("v")
    backend.probe_script.append(ProbeOutcome(False, "GET answered 402", key_refused=True, payment_refused=True))
    (prober,) = replicas(1, backend)
    prober.health.config = BreakerConfig(quarantine_s=300, credit_quarantine_s=7)

    await prober.probe_once(prober.routes[0])
    status = await prober.health.status(prober.routes[0])

    assert status.state is CircuitState.QUARANTINED
    assert status.back_in is not None and status.back_in <= 7


async def test_the_last_probe_is_kept_for_every_replica_to_read() -> None:
    backend = ScriptedBackend("v")
    backend.probe_script.append(ProbeOutcome(False, "cannot connect", seconds=0.25))
    a, b = replicas(2, backend)

    await a.probe_once(a.routes[0])
    record = await last_probe(b.store, b.routes[0])

    assert record is not None
    assert (record.ok, record.detail, record.seconds) == (False, "cannot connect", 0.25)
    assert record.at > 0


async def test_a_probe_that_raises_counts_as_failed() -> None:
    backend = ScriptedBackend("v")

    async def explode(timeout_s: float) -> ProbeOutcome:
        raise RuntimeError("bug")

    backend.probe = explode  # type: ignore[method-assign]
    (prober,) = replicas(1, backend)

    outcome = await prober.probe_once(prober.routes[0])

    assert outcome is not None and not outcome.ok
    assert (await prober.health.status(prober.routes[0])).state is CircuitState.OPEN


async def test_the_loop_probes_every_interval_until_stopped() -> None:
    backend = ScriptedBackend("v")
    (prober,) = replicas(1, backend, interval_s=0.02)

    prober.start()
    while backend.probes < 3:
        await asyncio.sleep(0.01)
    await prober.stop()
    probes = backend.probes
    await asyncio.sleep(0.05)

    assert backend.probes == probes


async def test_a_probe_that_swallows_every_cancel_does_not_hold_the_stop() -> None:
    deaf, backend = Deaf(), ScriptedBackend("v")

    async def hung(timeout_s: float) -> ProbeOutcome:  # its connection hung: no cancel gets through
        await deaf.run()
        return ProbeOutcome(False, "never")

    backend.probe = hung  # type: ignore[method-assign]
    (prober,) = replicas(1, backend)
    prober.start()
    await deaf.started.wait()

    await ends_within(prober.stop(), deaf)

    assert deaf.cancels >= 2  # cancelled again, not once and then awaited forever
    deaf.release()  # the test's own clean-up: the probe left behind ends
