"""What a request may ask of the router, and what its key lets it."""

from __future__ import annotations

import pytest

from core.errors import InvalidRequest, PermissionDenied
from pricing.config import KeyRouting
from proxy.routing.choice import RoutingChoice
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to


def test_a_policy_and_a_pinned_route_are_read() -> None:
    assert RoutingChoice.asked("fastest", None) == RoutingChoice("fastest")
    assert RoutingChoice.asked(None, "runflow") == RoutingChoice(None, "runflow", None)
    assert RoutingChoice.asked("cheapest", "callmissed/eu") == RoutingChoice("cheapest", "callmissed", "eu")


@pytest.mark.parametrize(("policy", "pinned", "param"), [
    ("quickest", None, "routing_policy"), (7, None, "routing_policy"),
    (None, "run flow", "x-boltgate-route"), (None, "runflow/eu/x", "x-boltgate-route"), (None, "", "x-boltgate-route"),
])
def test_anything_else_is_a_400_naming_the_field(policy: object, pinned: str | None, param: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        RoutingChoice.asked(policy, pinned)

    assert raised.value.param == param


def test_a_key_may_be_limited_to_some_policies_and_kept_from_pinning() -> None:
    narrow = KeyRouting(policies=("priority", "cheapest"), pin_routes=False)

    RoutingChoice("cheapest").check_allowed(narrow)
    RoutingChoice("fastest").check_allowed(None)  # no routing policy on the key: anything
    with pytest.raises(PermissionDenied) as policy:
        RoutingChoice("fastest").check_allowed(narrow)
    with pytest.raises(PermissionDenied) as pin:
        RoutingChoice(None, "runflow").check_allowed(narrow)

    assert (policy.value.status_code, policy.value.param) == (403, "routing_policy")
    assert pin.value.param == "x-boltgate-route"


def test_a_pin_keeps_the_vendors_routes_or_names_the_ones_there_are() -> None:
    routes = [route_to(ScriptedBackend("runflow", "eu")), route_to(ScriptedBackend("runflow", "us")),
              route_to(ScriptedBackend("eachlabs", "us"))]

    assert RoutingChoice(None, "runflow").pinned_routes(routes) == routes[:2]
    assert RoutingChoice(None, "runflow", "us").pinned_routes(routes) == [routes[1]]
    assert RoutingChoice().pinned_routes(routes) == routes
    with pytest.raises(InvalidRequest, match="eachlabs/us, runflow/eu, runflow/us"):
        RoutingChoice(None, "runflow", "asia").pinned_routes(routes)
