"""In which order the routes are tried: priority first, weights within a priority, or price."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from decimal import Decimal

from proxy.routing.route import Route


def order_by_priority(routes: Sequence[Route], rng: random.Random | None = None) -> list[Route]:
    """Lower priority first; within a priority, accounts in a weighted random order; within an
    account, its regions in the order listed (the primary region first).

    Each account draws ``u ** (1 / weight)``; sorting by that draw picks accounts in proportion
    to their weights without replacement, so the rest stay in line as failover targets.
    """
    if len(routes) < 2:
        return list(routes)  # nothing to order (and no draw to spend): the common one-route case
    draw = (rng or random).random
    account_draws: dict[str, float] = {}
    for route in routes:
        if _account(route) not in account_draws:
            account_draws[_account(route)] = -(draw() ** (1.0 / route.weight))
    keyed = [(route.priority, account_draws[_account(route)], route.region_rank, index, route)
             for index, route in enumerate(routes)]
    keyed.sort(key=lambda item: item[:4])
    return [item[4] for item in keyed]


def _account(route: Route) -> str:
    """A route built without an account is an account of its own."""
    return route.account or route.key


def order_by_price(
    routes: Sequence[Route], price_of: Callable[[Route], Decimal], rng: random.Random | None = None
) -> list[Route]:
    """Cheapest expected price first; ties keep the priority order."""
    by_priority = order_by_priority(routes, rng)
    return sorted(by_priority, key=price_of)


LatencyOf = Callable[[Route], float | None]
"""A route's decayed latency estimate, None when it has served nothing recently."""


def _neutral(routes: Sequence[Route], latency_of: LatencyOf) -> dict[str, float] | None:
    """Each route's latency, an unmeasured one taking the median of the measured (so it is
    neither shunned nor favoured until it has a record); None when none is measured."""
    known = sorted(value for route in routes if (value := latency_of(route)) is not None)
    if not known:
        return None
    median = known[len(known) // 2]
    return {route.key: (value if (value := latency_of(route)) is not None else median) for route in routes}


def order_by_latency(routes: Sequence[Route], latency_of: LatencyOf, rng: random.Random | None = None) -> list[Route]:
    """Fastest recent latency first; ties (and the start, before anything is measured) keep the
    priority order."""
    by_priority = order_by_priority(routes, rng)
    latencies = _neutral(by_priority, latency_of)
    if latencies is None:
        return by_priority
    return sorted(by_priority, key=lambda route: latencies[route.key])


def order_balanced(
    routes: Sequence[Route], latency_of: LatencyOf, price_of: Callable[[Route], Decimal], *,
    latency_weight: float, price_weight: float, rng: random.Random | None = None,
) -> list[Route]:
    """Priority tiers first; within a tier, the lowest ``latency_weight * latency / best latency
    + price_weight * price / best price`` (each relative to the tier's best, so that seconds and
    dollars weigh alike)."""
    by_priority = order_by_priority(routes, rng)
    tiers: dict[int, list[Route]] = {}
    for route in by_priority:
        tiers.setdefault(route.priority, []).append(route)
    ordered: list[Route] = []
    for tier in tiers.values():
        latencies = _relative(_neutral(tier, latency_of) or {})
        prices = _relative({route.key: float(price_of(route)) for route in tier})
        scores = {route.key: latency_weight * latencies.get(route.key, 1.0) + price_weight * prices[route.key]
                  for route in tier}
        ordered += sorted(tier, key=lambda route: scores[route.key])
    return ordered


def _relative(values: dict[str, float]) -> dict[str, float]:
    """Each value over the smallest (1.0 for the best); all 1.0 when the best is zero."""
    best = min(values.values(), default=0.0)
    return {key: value / best if best > 0 else 1.0 for key, value in values.items()}
