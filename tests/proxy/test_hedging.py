"""A request's hedge allowance: per-request cost, price ceiling, the key's credit and daily budgets."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from core.request import ImageRequest
from core.state.memory import MemoryStateStore
from pricing.config import KeyRouting, PricingConfig
from pricing.keys import KeyRecord
from proxy.billing import Billing
from proxy.hedging import HedgeAllowance
from proxy.settings import HedgingConfig
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to

AIGATEWAY, RUNFLOW, CALLMISSED = (route_to(ScriptedBackend(name)) for name in ("aigateway", "runflow", "callmissed"))
"""Upstream $0.0008, $0.003 and $0.04 an image; clients pay 35% more."""


def key(budget_credits: str | None = None, routing: KeyRouting | None = None) -> KeyRecord:
    return KeyRecord("k1", "k1", None if budget_credits is None else Decimal(budget_credits),
                     datetime(2026, 1, 1, tzinfo=UTC), routing=routing)


def allowance(record: KeyRecord, config: HedgingConfig | None = None, **fields: object) -> HedgeAllowance:
    store = MemoryStateStore()
    billing = Billing(store, PricingConfig(), {}, require_key=False)
    request = ImageRequest.model_validate({"prompt": "a kite", **fields})
    return HedgeAllowance(billing, store, config or HedgingConfig(enabled=True), record, request)


async def test_a_hedge_within_every_budget_is_allowed_and_its_reservation_given_back() -> None:
    gate = allowance(key(budget_credits="1"))

    assert await gate.allow(AIGATEWAY, RUNFLOW)
    assert (await gate.billing.ledger.usage("k1", Decimal("1")))["reserved_usd"] == "0.004050"
    await gate.release()
    assert (await gate.billing.ledger.usage("k1", Decimal("1")))["reserved_usd"] == "0.000000"


async def test_a_hedge_costing_more_than_the_per_request_budget_does_not_start() -> None:
    gate = allowance(key(), HedgingConfig(max_extra_usd_per_request=Decimal("0.01")))

    assert not await gate.allow(AIGATEWAY, CALLMISSED)  # $0.04 upstream
    assert await gate.allow(AIGATEWAY, RUNFLOW)


async def test_both_racers_together_must_stay_under_the_requests_price_ceiling() -> None:
    tight = allowance(key(), max_price_usd="0.005")  # runflow alone ($0.00405) fits, with aigateway not
    roomy = allowance(key(), max_price_usd="0.006")

    assert not await tight.allow(AIGATEWAY, RUNFLOW)
    assert await roomy.allow(AIGATEWAY, RUNFLOW)  # $0.00108 + $0.00405


async def test_a_key_without_credit_for_the_hedge_gets_none() -> None:
    gate = allowance(key(budget_credits="0.3"))  # 0.3 credits = $0.003 < runflow's $0.00405

    assert not await gate.allow(AIGATEWAY, RUNFLOW)
    assert (await gate.billing.ledger.usage("k1", Decimal("0.3")))["reserved_usd"] == "0.000000"


async def test_the_keys_daily_hedge_budget_caps_hedges_and_the_keys_own_setting_wins() -> None:
    gateway_cap = allowance(key(), HedgingConfig(key_budget_usd_per_day=Decimal("0.005")))
    own_cap = allowance(key(routing=KeyRouting(hedge_budget_usd_per_day=Decimal("0.001"))),
                        HedgingConfig(key_budget_usd_per_day=Decimal("1")))

    assert await gateway_cap.allow(AIGATEWAY, RUNFLOW)  # $0.003 of $0.005
    assert not await gateway_cap.allow(AIGATEWAY, RUNFLOW)  # $0.006 would pass the cap
    assert await gateway_cap.allow(RUNFLOW, AIGATEWAY)  # $0.0038
    assert not await own_cap.allow(AIGATEWAY, RUNFLOW)
