"""Billing: what a route may charge at most, what the client is billed, and holds per route tried."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.errors import InsufficientCredits
from core.request import ImageRequest
from core.state.memory import MemoryStateStore
from core.state.memory_ledger import MemoryLedgerStore
from pricing.catalog import PriceCatalog
from pricing.config import PricingConfig
from pricing.keys import KeyRecord
from proxy.billing import ANONYMOUS, Billing
from proxy.routing.route import Route
from tests.proxy.routing.scripted_backend import ScriptedBackend

CATALOG = PriceCatalog.load(PricingConfig())
REQUEST = ImageRequest(prompt="a kite", width=1024, height=1024, n=2)


def billing() -> Billing:
    return Billing(MemoryLedgerStore(), MemoryStateStore(), PricingConfig(), {}, require_key=False)


def route(vendor: str, *, timeout_s: float = 30.0, per_image: float | None = None) -> Route:
    return Route(ScriptedBackend(vendor), timeout_s=timeout_s, max_billable_s_per_image=per_image)


def test_a_per_image_vendor_can_charge_at_most_its_price() -> None:
    assert billing().most_billable(route("runflow"), REQUEST) == CATALOG.quote("runflow", REQUEST).client_usd


@pytest.mark.parametrize(("per_image", "seconds"), [(None, "30"), (4.0, "8")])
def test_a_time_billed_vendor_can_charge_at_most_its_billable_cap(per_image: float | None, seconds: str) -> None:
    most = billing().most_billable(route("eachlabs", per_image=per_image), REQUEST)
    assert most == CATALOG.quote("eachlabs", REQUEST, run_seconds=Decimal(seconds)).client_usd
    assert most > CATALOG.quote("eachlabs", REQUEST).client_usd  # the estimate would not cover a slow run


def test_run_time_past_the_cap_is_not_billed_and_is_counted_as_an_overrun() -> None:
    bill = billing().final_bill(route("eachlabs", per_image=3.0), REQUEST, run_seconds=10.0, images=2)
    assert bill.quote == CATALOG.quote("eachlabs", REQUEST, run_seconds=Decimal(6), images=2)
    assert bill.overrun_usd == Decimal("0.00154") * 4  # 4 s above the 6 s cap, at the vendor's price


def test_run_time_within_the_cap_is_billed_as_reported() -> None:
    bill = billing().final_bill(route("eachlabs", per_image=3.0), REQUEST, run_seconds=2.5, images=2)
    assert bill.quote == CATALOG.quote("eachlabs", REQUEST, run_seconds=Decimal("2.5"), images=2)
    assert bill.overrun_usd == 0


def test_the_gpu_workers_are_capped_like_any_time_billed_vendor() -> None:
    bill = billing().final_bill(route("worker", timeout_s=5.0), REQUEST, run_seconds=9.0, images=2)
    assert bill.quote.seconds == Decimal(5)
    assert bill.overrun_usd > 0


async def test_a_reservation_is_topped_up_for_a_pricier_route_or_left_as_it_was() -> None:
    billed = billing()
    key = KeyRecord("k", "team", Decimal("6"), ANONYMOUS.created)  # $0.06
    single = ImageRequest(prompt="a kite", width=1024, height=1024)
    reservation = await billed.hold_for(None, key, route("runflow"), single, lease_s=60)
    assert reservation.amount_usd == CATALOG.quote("runflow", single).client_usd
    await billed.hold_for(reservation, key, route("callmissed"), single, lease_s=60)
    assert reservation.amount_usd == CATALOG.quote("callmissed", single).client_usd
    with pytest.raises(InsufficientCredits):
        await billed.hold_for(reservation, key, route("eachlabs"), single, lease_s=60)  # 30 s: $0.0624
    assert reservation.amount_usd == CATALOG.quote("callmissed", single).client_usd
