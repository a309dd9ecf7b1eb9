"""Route order: priority first, then a weighted draw between accounts, then each account's
regions in the order listed; or, for the ``cheapest`` policy, the price."""

from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal

import pytest

from proxy.routing.policy import order_by_price, order_by_priority
from proxy.routing.route import Route
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to

DRAWS = 2000


def named(name: str, *, region: str = "r1", priority: int = 100, weight: float = 1.0,
          account: str | None = None, region_rank: int = 0) -> Route:
    return route_to(ScriptedBackend(name, region), priority=priority, weight=weight, account=account,
                    region_rank=region_rank)


def test_lower_priority_numbers_always_come_first_whatever_the_weights() -> None:
    routes = [named("backup", priority=20, weight=100), named("main", priority=10, weight=0.01)]
    rng = random.Random(1)

    for _ in range(200):
        assert [route.vendor for route in order_by_priority(routes, rng)] == ["main", "backup"]


@pytest.mark.parametrize(("weights", "expected_first_share"), [
    ((3.0, 1.0), 0.75),
    ((1.0, 1.0), 0.5),
    ((1.0, 4.0), 0.2),
])
def test_weights_share_the_first_place_within_a_priority(
    weights: tuple[float, float], expected_first_share: float
) -> None:
    routes = [named("a", weight=weights[0]), named("b", weight=weights[1])]
    rng = random.Random(20240219)

    firsts = Counter(order_by_priority(routes, rng)[0].vendor for _ in range(DRAWS))

    assert firsts["a"] / DRAWS == pytest.approx(expected_first_share, abs=0.04)
    assert firsts["a"] + firsts["b"] == DRAWS


def test_three_accounts_share_first_place_in_proportion_to_their_weights() -> None:
    routes = [named("a", weight=1), named("b", weight=2), named("c", weight=5)]
    rng = random.Random(77)

    firsts = Counter(order_by_priority(routes, rng)[0].vendor for _ in range(DRAWS))

    assert firsts["a"] / DRAWS == pytest.approx(1 / 8, abs=0.03)
    assert firsts["b"] / DRAWS == pytest.approx(2 / 8, abs=0.04)
    assert firsts["c"] / DRAWS == pytest.approx(5 / 8, abs=0.04)


def test_every_route_stays_in_the_order_as_a_failover_target() -> None:
    routes = [named("a", weight=5), named("b", weight=1), named("c", priority=200)]
    rng = random.Random(3)

    for _ in range(100):
        ordered = order_by_priority(routes, rng)
        assert sorted(route.vendor for route in ordered[:2]) == ["a", "b"]
        assert ordered[2].vendor == "c"


def test_an_accounts_regions_stay_together_primary_first() -> None:
    routes = [
        named("a", region="eu", account="0:a", region_rank=1),
        named("b", region="us", account="1:b"),
        named("a", region="us", account="0:a", region_rank=0),
    ]
    rng = random.Random(5)
    seen: set[tuple[str, ...]] = set()

    for _ in range(200):
        seen.add(tuple(route.key for route in order_by_priority(routes, rng)))

    assert seen == {("a:us", "a:eu", "b:us"), ("b:us", "a:us", "a:eu")}


def test_the_same_seed_gives_the_same_order() -> None:
    routes = [named(name) for name in "abcdef"]

    first = [route.vendor for route in order_by_priority(routes, random.Random(9))]
    again = [route.vendor for route in order_by_priority(routes, random.Random(9))]

    assert first == again
    assert sorted(first) == list("abcdef")


def test_price_order_puts_the_cheapest_first_and_keeps_priority_order_on_ties() -> None:
    prices = {"a": Decimal("0.003"), "b": Decimal("0.001"), "c": Decimal("0.003"), "d": Decimal("0.002")}
    routes = [named("c", priority=3), named("a", priority=1), named("b", priority=2), named("d", priority=4)]

    ordered = order_by_price(routes, lambda route: prices[route.vendor], random.Random(0))

    assert [route.vendor for route in ordered] == ["b", "d", "a", "c"]
