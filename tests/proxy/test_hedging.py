"""A request's hedge allowance: per-request cost, price ceiling, the key's daily budget, and its
credit, held once for both racing routes and settled once, for the winner."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from backends.base import BackendResult
from core.deadline import Deadline
from core.request import ImageRequest
from core.state.memory import MemoryStateStore
from core.state.memory_ledger import MemoryLedgerStore
from pricing.config import KeyRouting, PricingConfig
from pricing.keys import KeyRecord
from proxy.billing import Billing
from proxy.hedging import HedgeAllowance
from proxy.request_hold import RequestHold
from proxy.settings import HedgingConfig
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to

AIGATEWAY, RUNFLOW, CALLMISSED = (route_to(ScriptedBackend(name)) for name in ("aigateway", "runflow", "callmissed"))
"""Upstream $0.0008, $0.003 and $0.04 an image; clients pay 35% more ($0.00108, $0.00405, $0.054)."""


def key(budget_credits: str | None = None, routing: KeyRouting | None = None) -> KeyRecord:
    return KeyRecord("k1", "k1", None if budget_credits is None else Decimal(budget_credits),
                     datetime(2026, 1, 1, tzinfo=UTC), routing=routing)


@dataclass
class Racing:
    """A request whose first route (aigateway unless said) is admitted and running."""

    gate: HedgeAllowance
    hold: RequestHold
    billing: Billing

    async def reserved(self) -> str:
        return str((await self.billing.ledger.usage("k1"))["reserved_usd"])


async def racing(record: KeyRecord, config: HedgingConfig | None = None, *, store: MemoryStateStore | None = None,
                 book: MemoryLedgerStore | None = None, primary: object = AIGATEWAY, **fields: object) -> Racing:
    store = store or MemoryStateStore()
    billing = Billing(book or MemoryLedgerStore(), store, PricingConfig(), {}, require_key=False)
    request = ImageRequest.model_validate({"prompt": "a kite", **fields})
    hold = RequestHold(billing, record, request, Deadline(30), grace_s=5)
    await hold.admit(primary)  # type: ignore[arg-type]
    return Racing(HedgeAllowance(billing, store, config or HedgingConfig(enabled=True), record, request, hold),
                  hold, billing)


async def test_a_hedge_holds_both_routes_at_once_and_the_client_is_charged_once_for_the_winner() -> None:
    race = await racing(key(budget_credits="1"))
    assert await race.reserved() == "0.001080"

    assert await race.gate.allow(AIGATEWAY, RUNFLOW)
    assert await race.reserved() == "0.005130"  # $0.00108 + $0.00405, in the request's one hold

    assert race.hold.reservation is not None
    request = race.gate.request
    bill = race.billing.final_bill(RUNFLOW, request, run_seconds=None, images=1)
    pending = race.billing.pending_charge(race.hold.reservation, RUNFLOW, bill, BackendResult(images=[]))
    await race.billing.settle(pending)
    usage = await race.billing.ledger.usage("k1")
    assert (usage["spent_usd"], usage["reserved_usd"]) == ("0.004050", "0.000000")


async def test_a_hedge_costing_more_than_the_per_request_budget_does_not_start() -> None:
    race = await racing(key(), HedgingConfig(max_extra_usd_per_request=Decimal("0.01")))

    assert not await race.gate.allow(AIGATEWAY, CALLMISSED)  # $0.04 upstream
    assert await race.gate.allow(AIGATEWAY, RUNFLOW)


async def test_both_racers_together_must_stay_under_the_requests_price_ceiling() -> None:
    tight = await racing(key(), max_price_usd="0.005")  # runflow alone ($0.00405) fits, with aigateway not
    roomy = await racing(key(), max_price_usd="0.006")

    assert not await tight.gate.allow(AIGATEWAY, RUNFLOW)
    assert await roomy.gate.allow(AIGATEWAY, RUNFLOW)  # $0.00108 + $0.00405


async def test_a_key_without_credit_for_both_racers_gets_no_hedge_and_keeps_its_hold() -> None:
    race = await racing(key(budget_credits="0.5"))  # $0.005: either route alone fits, both ($0.00513) not

    assert not await race.gate.allow(AIGATEWAY, RUNFLOW)
    assert await race.reserved() == "0.001080"


async def test_a_hedge_refused_for_credit_gives_its_daily_budget_back() -> None:
    store, book = MemoryStateStore(), MemoryLedgerStore()
    daily = HedgingConfig(key_budget_usd_per_day=Decimal("0.003"))  # room for one runflow hedge ($0.003)
    poor = await racing(key(budget_credits="0.5"), daily, store=store, book=book)
    assert not await poor.gate.allow(AIGATEWAY, RUNFLOW)
    await poor.billing.ledger.release(poor.hold.reservation)  # type: ignore[arg-type]

    rich = await racing(key(budget_credits="10"), daily, store=store, book=book)
    assert await rich.gate.allow(AIGATEWAY, RUNFLOW)


async def test_the_keys_daily_hedge_budget_caps_hedges_and_the_keys_own_setting_wins() -> None:
    store = MemoryStateStore()
    gateway_cap = HedgingConfig(key_budget_usd_per_day=Decimal("0.005"))
    first, second = [await racing(key(), gateway_cap, store=store) for _ in range(2)]
    third = await racing(key(), gateway_cap, store=store, primary=RUNFLOW)
    own_cap = await racing(key(routing=KeyRouting(hedge_budget_usd_per_day=Decimal("0.001"))),
                           HedgingConfig(key_budget_usd_per_day=Decimal("1")))

    assert await first.gate.allow(AIGATEWAY, RUNFLOW)  # $0.003 of $0.005
    assert not await second.gate.allow(AIGATEWAY, RUNFLOW)  # $0.006 would pass the cap
    assert await third.gate.allow(RUNFLOW, AIGATEWAY)  # $0.0038
    assert not await own_cap.gate.allow(AIGATEWAY, RUNFLOW)
