"""A failed attempt the vendor billed anyway: the error's typed fields reach the ledger as a loss.

The router hands every ``BackendError`` with ``billed`` set to ``Billing.record_loss``, which
books the vendor's reported cost, else the catalog price of its reported run time, else the
catalog's estimate. The client is never charged for it.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.deadline import Deadline
from core.errors import BackendError, JobFailed, VendorProtocolError, VendorUnavailable
from core.request import ImageRequest
from core.state.memory import MemoryStateStore
from pricing.config import PricingConfig
from proxy.billing import Billing
from proxy.routing.health import RouteHealth
from proxy.routing.router import Router
from proxy.settings import BreakerConfig
from tests.proxy.routing.scripted_backend import NO_BACKOFF, ScriptedBackend, route_to

REQUEST = ImageRequest(prompt="a lighthouse at dusk", seed=1, width=1024, height=1024, steps=4)


async def losses_after(failure: BackendError, vendor: str = "eachlabs") -> tuple[dict[str, int], Billing]:
    """Serve REQUEST where ``vendor`` fails with ``failure`` once and runflow then answers."""
    store = MemoryStateStore()
    billing = Billing(store, PricingConfig(), {}, require_key=False)
    router = Router(
        [route_to(ScriptedBackend.playing(vendor, failure), priority=1, max_attempts=1),
         route_to(ScriptedBackend("runflow"), priority=2)],
        RouteHealth(store, BreakerConfig()), NO_BACKOFF, on_loss=billing.record_loss,
    )
    routed = await router.generate(REQUEST, Deadline(5))
    assert routed.route.vendor == "runflow"
    return await store.hgetall("ledger:losses:vendor_usd"), billing


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
