"""Price: routes above the client's ceiling are skipped; the ``cheapest`` policy orders by price."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.deadline import Deadline
from core.errors import PriceCeilingExceeded
from core.request import ImageRequest
from proxy.routing.route import Route
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to, router_over


def request(**fields: object) -> ImageRequest:
    return ImageRequest.model_validate({"prompt": "a lighthouse at dusk", "seed": 1, **fields})


PRICES = {"dear": Decimal("0.010"), "fair": Decimal("0.004"), "cheap": Decimal("0.002")}


def price_of(route: Route, _: ImageRequest) -> Decimal:
    return PRICES[route.vendor]


async def test_routes_above_the_price_ceiling_are_skipped() -> None:
    dear, cheap = ScriptedBackend("dear"), ScriptedBackend("cheap")
    router = router_over([route_to(dear, priority=1), route_to(cheap, priority=2)], price_of=price_of)

    ordered, skipped = await router.candidates(request(max_price_usd="0.005"))
    routed = await router.generate(request(max_price_usd="0.005"), Deadline(5))

    assert [route.backend for route in ordered] == [cheap]
    assert skipped == ["dear:r1: price 0.010 USD above the ceiling 0.005"]
    assert routed.route.backend is cheap
    assert dear.calls == []


async def test_without_a_ceiling_no_route_is_priced_out() -> None:
    router = router_over([route_to(ScriptedBackend("dear")), route_to(ScriptedBackend("cheap"))], price_of=price_of)

    ordered, skipped = await router.candidates(request())

    assert len(ordered) == 2
    assert skipped == []


async def test_when_every_route_is_above_the_ceiling_the_cheapest_price_is_named() -> None:
    router = router_over([route_to(ScriptedBackend("dear")), route_to(ScriptedBackend("fair"))], price_of=price_of)

    with pytest.raises(PriceCeilingExceeded) as raised:
        await router.generate(request(max_price_usd="0.001"), Deadline(5))

    assert raised.value.status_code == 402
    assert raised.value.param == "max_price_usd"
    assert "the cheapest available price is 0.004 USD" in raised.value.message


async def test_the_cheapest_policy_orders_routes_by_price() -> None:
    dear, fair, cheap = ScriptedBackend("dear"), ScriptedBackend("fair"), ScriptedBackend("cheap")
    routes = [route_to(dear, priority=1), route_to(fair, priority=2), route_to(cheap, priority=3)]

    by_price, _ = await router_over(routes, policy="cheapest", price_of=price_of).candidates(request())
    by_priority, _ = await router_over(routes, price_of=price_of).candidates(request())
    routed = await router_over(routes, policy="cheapest", price_of=price_of).generate(request(), Deadline(5))

    assert [route.vendor for route in by_price] == ["cheap", "fair", "dear"]
    assert [route.vendor for route in by_priority] == ["dear", "fair", "cheap"]
    assert routed.route.backend is cheap
