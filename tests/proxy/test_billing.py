"""Billing: what a route may charge at most, what the client is billed, holds per route tried,
and failed attempts the vendor billed anyway.

The router hands every ``BackendError`` with ``billed`` set to ``Billing.record_loss``, which
books the vendor's reported cost, else the catalog price of its reported run time, else the
catalog's estimate. The client is never charged for it.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.deadline import Deadline
from core.errors import BackendError, InsufficientCredits, JobFailed, VendorProtocolError, VendorUnavailable
from core.request import ImageRequest
from core.state.memory import MemoryStateStore
from core.state.memory_ledger import MemoryLedgerStore
from pricing.catalog import PriceCatalog
from pricing.config import PricingConfig
from pricing.keys import KeyRecord
from proxy.billing import ANONYMOUS, Billing
from proxy.routing.health import RouteHealth
from proxy.routing.route import Route
from proxy.routing.router import Router
from proxy.settings import BreakerConfig
from tests.proxy.routing.scripted_backend import NO_BACKOFF, ScriptedBackend, route_to

CATALOG = PriceCatalog.load(PricingConfig())

REQUEST = ImageRequest(prompt="a lighthouse at dusk", seed=1, width=1024, height=1024, steps=4)


async def losses_after(failure: BackendError, vendor: str = "eachlabs") -> tuple[dict[str, int], Billing]:
    """Serve REQUEST where ``vendor`` fails with ``failure`` once and runflow then answers."""
    store, book = MemoryStateStore(), MemoryLedgerStore()
    billing = Billing(book, store, PricingConfig(), {}, require_key=False)
    router = Router(
        [route_to(ScriptedBackend.playing(vendor, failure), priority=1, max_attempts=1),
         route_to(ScriptedBackend("runflow"), priority=2)],
        RouteHealth(store, BreakerConfig()), NO_BACKOFF, on_loss=billing.record_loss,
    )
    routed = await router.generate(REQUEST, Deadline(5))
    assert routed.route.vendor == "runflow"
    return await book.table("losses:vendor_usd"), billing


async def test_a_billed_job_is_a_loss_priced_from_its_reported_run_time() -> None:
    losses, billing = await losses_after(JobFailed("failed midway", billed=True, run_seconds=2.5))

    expected = billing.quote("eachlabs", REQUEST, run_seconds=2.5).upstream_usd
    assert expected == Decimal("0.003850")
    assert losses == {"eachlabs": 3850}


async def test_the_vendors_own_reported_cost_wins_over_the_catalog() -> None:
    failure = JobFailed("failed midway", billed=True, run_seconds=2.5, vendor_cost_usd=Decimal("0.0042"))

    losses, _ = await losses_after(failure)

    assert losses == {"eachlabs": 4200}


async def test_a_billed_failure_with_no_figures_is_booked_at_the_catalog_estimate() -> None:
    losses, billing = await losses_after(JobFailed("failed", billed=True))

    estimate = billing.quote("eachlabs", REQUEST).upstream_usd
    assert losses == {"eachlabs": int(estimate * 1_000_000)}
    assert estimate > 0


@pytest.mark.parametrize("failure", [
    VendorUnavailable("502 after the run started", status=502, billed=True, vendor_cost_usd=Decimal("0.001")),
    VendorProtocolError("an answer we cannot read, billed", billed=True, vendor_cost_usd=Decimal("0.001")),
])
async def test_any_backend_error_can_be_billed_not_only_a_failed_job(failure: BackendError) -> None:
    losses, _ = await losses_after(failure)

    assert losses == {"eachlabs": 1000}


@pytest.mark.parametrize("failure", [
    JobFailed("never ran", billed=False, run_seconds=2.5, vendor_cost_usd=Decimal("0.004")),
    VendorUnavailable("503", status=503),
])
async def test_an_unbilled_failure_is_no_loss(failure: BackendError) -> None:
    losses, _ = await losses_after(failure)

    assert losses == {}


TWO = ImageRequest(prompt="a kite", width=1024, height=1024, n=2)


def billing() -> Billing:
    return Billing(MemoryLedgerStore(), MemoryStateStore(), PricingConfig(), {}, require_key=False)


def route(vendor: str, *, timeout_s: float = 30.0, per_image: float | None = None) -> Route:
    return Route(ScriptedBackend(vendor), timeout_s=timeout_s, max_billable_s_per_image=per_image)


def test_a_per_image_vendor_can_charge_at_most_its_price() -> None:
    assert billing().most_billable(route("runflow"), TWO) == CATALOG.quote("runflow", TWO).client_usd


@pytest.mark.parametrize(("per_image", "seconds"), [(None, "30"), (4.0, "8")])
def test_a_time_billed_vendor_can_charge_at_most_its_billable_cap(per_image: float | None, seconds: str) -> None:
    most = billing().most_billable(route("eachlabs", per_image=per_image), TWO)
    assert most == CATALOG.quote("eachlabs", TWO, run_seconds=Decimal(seconds)).client_usd
    assert most > CATALOG.quote("eachlabs", TWO).client_usd  # the estimate would not cover a slow run


def test_run_time_past_the_cap_is_not_billed_and_is_counted_as_an_overrun() -> None:
    bill = billing().final_bill(route("eachlabs", per_image=3.0), TWO, run_seconds=10.0, images=2)
    assert bill.quote == CATALOG.quote("eachlabs", TWO, run_seconds=Decimal(6), images=2)
    assert bill.overrun_usd == Decimal("0.00154") * 4  # 4 s above the 6 s cap, at the vendor's price


def test_run_time_within_the_cap_is_billed_as_reported() -> None:
    bill = billing().final_bill(route("eachlabs", per_image=3.0), TWO, run_seconds=2.5, images=2)
    assert bill.quote == CATALOG.quote("eachlabs", TWO, run_seconds=Decimal("2.5"), images=2)
    assert bill.overrun_usd == 0


def test_the_gpu_workers_are_capped_like_any_time_billed_vendor() -> None:
    bill = billing().final_bill(route("worker", timeout_s=5.0), TWO, run_seconds=9.0, images=2)
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
