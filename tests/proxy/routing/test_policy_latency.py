"""The latency-aware orders: ``fastest`` by the decayed estimate, ``balanced`` within priority tiers."""

from __future__ import annotations

from decimal import Decimal

from proxy.routing.policy import order_balanced, order_by_latency
from proxy.routing.route import Route
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to


def named(name: str, priority: int = 100) -> Route:
    return route_to(ScriptedBackend(name), priority=priority)


def names(routes: list[Route]) -> list[str]:
    return [route.vendor for route in routes]


def test_fastest_orders_by_the_estimate_whatever_the_priority() -> None:
    slow, fast, middle = named("slow", 1), named("fast", 50), named("middle", 20)
    latency = {"slow": 3.0, "fast": 0.4, "middle": 1.2}

    ordered = order_by_latency([slow, fast, middle], lambda route: latency[route.vendor])

    assert names(ordered) == ["fast", "middle", "slow"]


def test_fastest_keeps_the_priority_order_before_anything_is_measured() -> None:
    routes = [named("b", 2), named("a", 1), named("c", 3)]

    assert names(order_by_latency(routes, lambda route: None)) == ["a", "b", "c"]


def test_an_unmeasured_route_is_placed_at_the_median_of_the_measured() -> None:
    latency = {"fast": 0.5, "mid": 1.0, "slow": 4.0, "new": None}
    routes = [named("slow", 1), named("new", 2), named("mid", 3), named("fast", 4)]

    ordered = order_by_latency(routes, lambda route: latency[route.vendor])

    assert names(ordered) == ["fast", "new", "mid", "slow"]  # new ties with mid (1.0), and comes first by priority


def test_balanced_keeps_priority_tiers_and_weighs_latency_and_price_within_them() -> None:
    latency = {"quick-dear": 0.5, "slow-cheap": 1.0, "backup": 0.1}
    price = {"quick-dear": Decimal("0.04"), "slow-cheap": Decimal("0.001"), "backup": Decimal("0.001")}
    routes = [named("quick-dear", 10), named("slow-cheap", 10), named("backup", 20)]

    def order(latency_weight: float, price_weight: float) -> list[str]:
        return names(order_balanced(routes, lambda r: latency[r.vendor], lambda r: price[r.vendor],
                                    latency_weight=latency_weight, price_weight=price_weight))

    assert order(1.0, 1.0) == ["slow-cheap", "quick-dear", "backup"]  # 2 + 1 beats 1 + 40
    assert order(1.0, 0.0) == ["quick-dear", "slow-cheap", "backup"]  # latency alone
    assert order(0.0, 1.0)[-1] == "backup"  # the faster, cheap backup never jumps its tier
