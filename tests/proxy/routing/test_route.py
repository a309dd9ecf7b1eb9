"""A route names its backend's vendor and region; its key identifies it in the shared state."""

from __future__ import annotations

from proxy.routing.route import Route
from tests.proxy.routing.scripted_backend import ScriptedBackend


def test_a_route_is_known_by_vendor_and_region() -> None:
    route = Route(ScriptedBackend("runflow", region="eu-west"))

    assert (route.vendor, route.region, route.key) == ("runflow", "eu-west", "runflow:eu-west")


def test_a_route_defaults_to_priority_100_weight_1_and_3_attempts() -> None:
    route = Route(ScriptedBackend("a"))

    assert (route.priority, route.weight, route.max_attempts) == (100, 1.0, 3)


def test_two_routes_over_equal_settings_are_distinct() -> None:
    backend = ScriptedBackend("a")

    assert Route(backend) != Route(backend)
