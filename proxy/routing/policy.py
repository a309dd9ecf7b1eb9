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
