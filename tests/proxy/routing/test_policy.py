"""Route order: priority first, then a weighted draw within a priority, or the price."""

from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal

import pytest

from proxy.routing.policy import order_by_price, order_by_priority
from proxy.routing.route import Route
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to

DRAWS = 2000


def named(name: str, **knobs: object) -> Route:
    return route_to(ScriptedBackend(name), **knobs)  # type: ignore[arg-type]


def test_lower_priority_numbers_always_come_first_whatever_the_weights() -> None:
    routes = [named("backup", priority=20, weight=100), named("main", priority=10, weight=0.01)]
    rng = random.Random(1)

    for _ in range(200):
        assert [route.vendor for route in order_by_priority(routes, rng)] == ["main", "backup"]


@pytest.mark.parametrize(("weights", "expected_first_share"), [
    ((3.0, 1.0), (0.75, 0.25)),
    ((1.0, 1.0), (0.5, 0.5)),
    ((1.0, 4.0), (0.2, 0.8)),
])
def test_weights_share_the_first_place_within_a_priority(
    weights: tuple[float, float], expected_first_share: tuple[float, float]
) -> None:
    routes = [named("a", weight=weights[0]), named("b", weight=weights[1])]
    rng = random.Random(20240219)

    firsts = Counter(order_by_priority(routes, rng)[0].vendor for _ in range(DRAWS))

    assert firsts["a"] / DRAWS == pytest.approx(expected_first_share[0], abs=0.04)
    assert firsts["b"] / DRAWS == pytest.approx(expected_first_share[1], abs=0.04)


def test_every_route_stays_in_the_order_as_a_failover_target() -> None:
    routes = [named("a", weight=5), named("b", weight=1), named("c", priority=200)]
    rng = random.Random(3)

    for _ in range(100):
        ordered = order_by_priority(routes, rng)
        assert sorted(route.vendor for route in ordered[:2]) == ["a", "b"]
        assert ordered[2].vendor == "c"


def test_the_same_seed_gives_the_same_order() -> None:
    routes = [named(name) for name in "abcdef"]

    first = [route.vendor for route in order_by_priority(routes, random.Random(9))]
    again = [route.vendor for route in order_by_priority(routes, random.Random(9))]

    assert first == again


def test_price_order_puts_the_cheapest_first_and_keeps_priority_order_on_ties() -> None:
    prices = {"a": Decimal("0.003"), "b": Decimal("0.001"), "c": Decimal("0.003"), "d": Decimal("0.002")}
    routes = [named("c", priority=3), named("a", priority=1), named("b", priority=2), named("d", priority=4)]

    ordered = order_by_price(routes, lambda route: prices[route.vendor], random.Random(0))

    assert [route.vendor for route in ordered] == ["b", "d", "a", "c"]
