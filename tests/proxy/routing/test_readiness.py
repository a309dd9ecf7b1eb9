"""Readiness: not while a model loads, not when no route can serve, and back when one can."""

from __future__ import annotations

from dataclasses import dataclass

from backends.base import LoadsModel, LoadState
from core.state.memory import MemoryStateStore
from proxy.routing.health import RouteHealth
from proxy.routing.readiness import assess
from proxy.routing.route import Route
from proxy.settings import BreakerConfig
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to


@dataclass(eq=False)
class LoadingBackend(ScriptedBackend):
    """A backend that loads a model first, like the in-process pipeline."""

    load_state: LoadState = "loading"

    async def start(self) -> None:
        self.load_state = "ready"


def tracker() -> RouteHealth:
    return RouteHealth(MemoryStateStore(), BreakerConfig(failure_threshold=1))


async def test_ready_when_a_route_is_closed() -> None:
    readiness = await assess([route_to(ScriptedBackend("a"))], tracker())

    assert readiness.ready
    assert [entry.as_json() for entry in readiness.routes] == [{"route": "a:r1", "state": "closed", "reason": ""}]


async def test_not_ready_without_a_route() -> None:
    readiness = await assess([], tracker())

    assert readiness.problems == ["no route enabled"]


async def test_not_ready_while_a_model_loads_even_with_another_route_serving() -> None:
    local = LoadingBackend("local", "in-process")
    assert isinstance(local, LoadsModel)
    routes = [route_to(local), route_to(ScriptedBackend("a"))]

    loading = await assess(routes, tracker())
    await local.start()
    loaded = await assess(routes, tracker())

    assert loading.problems == ["warming up: local:in-process"]
    assert loading.routes[0].as_json()["model"] == "loading"
    assert loaded.ready


async def test_a_model_that_failed_to_load_does_not_count_as_serving() -> None:
    readiness = await assess([route_to(LoadingBackend("local", "in-process", load_state="failed"))], tracker())

    assert readiness.problems == ["no route can serve: local:in-process: model failed"]


async def test_not_ready_when_every_route_is_open_or_quarantined_and_ready_again_after_a_probe() -> None:
    health = tracker()
    a, b = route_to(ScriptedBackend("a")), route_to(ScriptedBackend("b"))
    await health.record_failure(a, "timeout")
    await health.quarantine(b, "401 bad key")

    out = await assess([a, b], health)
    await health.probe_passed(a)
    back = await assess([a, b], health)

    assert out.problems == ["no route can serve: a:r1: circuit open (1 consecutive failures, last: timeout); "
                            "b:r1: quarantined (401 bad key)"]
    assert back.ready
    assert [entry.status.state.value for entry in back.routes] == ["half_open", "quarantined"]


async def test_one_route_serving_is_enough() -> None:
    health = tracker()
    a, b = Route(ScriptedBackend("a")), Route(ScriptedBackend("b"))
    await health.probe_failed(a, "connection refused")

    assert (await assess([a, b], health)).ready
