"""The ledger: budgets that concurrent requests cannot overspend, charges, usage and losses."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from core.errors import InsufficientCredits, ReservationExpired, ReservationReleased
from core.request import ImageRequest
from core.state.base import StateStore
from core.state.memory_ledger import MemoryLedgerStore
from pricing.catalog import PriceCatalog
from pricing.charge_log import ChargeRecord
from pricing.ledger import Ledger
from pricing.quote import Quote

KEY = "key-id-1"
LEASE = 60.0


class Clock:
    """A settable UTC clock."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def quote(vendor: str, client_usd: str, images: int = 1) -> Quote:
    return Quote(
        vendor=vendor,
        images=images,
        upstream_usd=Decimal("0"),
        client_usd=Decimal(client_usd),
        credits=Decimal("0"),
        estimated=False,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 3, 12, 0, tzinfo=UTC))


@pytest.fixture
def book() -> MemoryLedgerStore:
    return MemoryLedgerStore()


@pytest.fixture
def ledger(book: MemoryLedgerStore, store: StateStore, clock: Clock) -> Ledger:
    return Ledger(book, store, Decimal("0.01"), clock=clock)


async def test_settle_charges_the_actual_price_and_releases_the_rest(ledger: Ledger) -> None:
    reservation = await ledger.reserve(KEY, Decimal("0.054"), Decimal("10"), lease_s=LEASE)
    assert reservation.amount_usd == Decimal("0.054000")
    await ledger.settle(reservation, quote("runflow", "0.00405"))
    usage = await ledger.usage(KEY, Decimal("10"))
    assert usage["spent_usd"] == "0.004050"
    assert usage["spent_credits"] == "0.4050"
    assert usage["reserved_usd"] == "0.000000"
    assert usage["remaining_credits"] == "9.5950"


async def test_a_reservation_beyond_the_budget_is_refused_naming_what_remains(ledger: Ledger) -> None:
    await ledger.reserve(KEY, Decimal("0.08"), Decimal("10"), lease_s=LEASE)
    with pytest.raises(InsufficientCredits) as refused:
        await ledger.reserve(KEY, Decimal("0.054"), Decimal("10"), lease_s=LEASE)
    assert refused.value.status_code == 402
    assert "5.4000 credits" in refused.value.message
    assert "2.0000" in refused.value.message
    await ledger.reserve(KEY, Decimal("0.02"), Decimal("10"), lease_s=LEASE)  # exactly the rest still fits
    usage = await ledger.usage(KEY, Decimal("10"))
    assert usage["remaining_credits"] == "0.0000"
    assert usage["reserved_usd"] == "0.100000"


async def test_fifty_concurrent_reservations_never_exceed_the_budget(ledger: Ledger) -> None:
    budget = Decimal("100")  # $1.00: room for 18 reservations of $0.054
    results = await asyncio.gather(
        *(ledger.reserve(KEY, Decimal("0.054"), budget, lease_s=LEASE) for _ in range(50)), return_exceptions=True
    )
    granted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(granted) == 18
    assert len(refused) == 32
    assert all(isinstance(error, InsufficientCredits) for error in refused)
    usage = await ledger.usage(KEY, budget)
    assert Decimal(str(usage["reserved_usd"])) == Decimal("0.972")
    assert usage["remaining_credits"] == "2.8000"


async def test_without_a_budget_every_reservation_succeeds_and_is_tracked(ledger: Ledger) -> None:
    for _ in range(3):
        await ledger.reserve(KEY, Decimal("10"), None, lease_s=LEASE)
    usage = await ledger.usage(KEY)
    assert usage["reserved_usd"] == "30.000000"
    assert usage["budget_credits"] is None
    assert usage["remaining_credits"] is None


async def test_release_gives_everything_back(ledger: Ledger) -> None:
    reservation = await ledger.reserve(KEY, Decimal("0.1"), Decimal("10"), lease_s=LEASE)
    await ledger.release(reservation)
    usage = await ledger.usage(KEY, Decimal("10"))
    assert usage["reserved_usd"] == "0.000000"
    assert usage["spent_usd"] == "0.000000"
    assert usage["remaining_credits"] == "10.0000"
    await ledger.reserve(KEY, Decimal("0.1"), Decimal("10"), lease_s=LEASE)  # the whole budget is free again


async def test_closing_a_reservation_twice_changes_nothing(ledger: Ledger) -> None:
    reservation = await ledger.reserve(KEY, Decimal("0.054"), None, lease_s=LEASE)
    await ledger.settle(reservation, quote("callmissed", "0.054"))
    await ledger.settle(reservation, quote("callmissed", "0.054"))
    await ledger.release(reservation)
    usage = await ledger.usage(KEY)
    assert usage["spent_usd"] == "0.054000"
    assert usage["reserved_usd"] == "0.000000"
    assert usage["images"] == 1


async def test_a_bill_above_its_reservation_is_charged_only_what_was_held(
    ledger: Ledger, book: MemoryLedgerStore
) -> None:
    reservation = await ledger.reserve(KEY, Decimal("0.004158"), Decimal("1"), lease_s=LEASE)
    await ledger.settle(reservation, quote("eachlabs", "0.012474"),  # ran 6 s instead of 2
                        overrun_usd=Decimal("0.00616"))
    usage = await ledger.usage(KEY, Decimal("1"))
    assert usage["spent_usd"] == "0.004158"
    assert usage["by_vendor"] == {"eachlabs": {"usd": "0.004158", "credits": "0.4158", "images": 1}}
    assert usage["remaining_credits"] == "0.5842"
    assert await book.table("losses:vendor_usd") == {"eachlabs": 6160}
    assert await book.table("losses:vendor_overruns") == {"eachlabs": 1}
    assert await book.table("losses:vendor_attempts") == {}


async def test_a_reservation_is_raised_for_a_pricier_route_within_the_budget(ledger: Ledger) -> None:
    reservation = await ledger.reserve(KEY, Decimal("0.001"), Decimal("10"), lease_s=LEASE)
    await ledger.hold(reservation, Decimal("0.054"), lease_s=LEASE)
    assert reservation.amount_usd == Decimal("0.054")
    assert (await ledger.usage(KEY, Decimal("10")))["reserved_usd"] == "0.054000"
    with pytest.raises(InsufficientCredits) as refused:
        await ledger.hold(reservation, Decimal("0.2"), lease_s=LEASE)
    assert "20.0000 credits" in refused.value.message
    assert "10.0000 of this key's budget" in refused.value.message  # its own hold counts as its own
    assert reservation.amount_usd == Decimal("0.054")
    assert (await ledger.usage(KEY, Decimal("10")))["reserved_usd"] == "0.054000"


async def test_a_reservation_whose_lease_ran_out_gives_its_credits_back(ledger: Ledger) -> None:
    await ledger.reserve(KEY, Decimal("0.1"), Decimal("10"), lease_s=0.1)  # its process was killed
    with pytest.raises(InsufficientCredits):
        await ledger.reserve(KEY, Decimal("0.01"), Decimal("10"), lease_s=LEASE)
    await asyncio.sleep(0.15)
    assert (await ledger.usage(KEY, Decimal("10")))["remaining_credits"] == "10.0000"
    await ledger.reserve(KEY, Decimal("0.1"), Decimal("10"), lease_s=LEASE)


async def test_a_charge_after_the_lease_ran_out_is_refused_when_the_budget_is_gone(ledger: Ledger) -> None:
    late = await ledger.reserve(KEY, Decimal("0.1"), Decimal("10"), lease_s=0.1)
    await asyncio.sleep(0.15)
    await ledger.reserve(KEY, Decimal("0.1"), Decimal("10"), lease_s=LEASE)
    with pytest.raises(ReservationExpired):
        await ledger.settle(late, quote("runflow", "0.1"))
    usage = await ledger.usage(KEY, Decimal("10"))
    assert usage["spent_usd"] == "0.000000"
    assert usage["images"] == 0


async def test_a_settle_of_a_reservation_given_back_charges_nothing_and_says_so(ledger: Ledger) -> None:
    """Another run of an async job released (or voided) the hold: this settle is no charge, and is
    never mistaken for the retry of one that landed (which answers quietly: its charge stands)."""
    given_back = await ledger.reserve(KEY, Decimal("0.1"), Decimal("10"), lease_s=LEASE)
    await ledger.release(given_back)
    with pytest.raises(ReservationReleased):
        await ledger.settle(given_back, quote("runflow", "0.1"))
    settled = await ledger.reserve(KEY, Decimal("0.1"), Decimal("10"), lease_s=LEASE)
    await ledger.settle(settled, quote("runflow", "0.1"))
    await ledger.settle(settled, quote("runflow", "0.1"))
    usage = await ledger.usage(KEY, Decimal("10"))
    assert usage["spent_usd"] == "0.100000"
    assert usage["images"] == 1


async def test_a_negative_reservation_is_refused(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="amount_usd"):
        await ledger.reserve(KEY, Decimal("-0.01"), None, lease_s=LEASE)


async def test_usage_by_utc_day_and_by_vendor(ledger: Ledger, clock: Clock) -> None:
    catalog = PriceCatalog.load()
    two = ImageRequest(prompt="two foxes", n=2)
    for vendor in ("callmissed", "runflow"):
        priced = catalog.quote(vendor, two)
        await ledger.settle(await ledger.reserve(KEY, priced.client_usd, None, lease_s=LEASE), priced)
    # 02:00 on the 5th in India is still the 4th in UTC.
    clock.now = datetime(2026, 11, 5, 2, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    priced = catalog.quote("callmissed", two, images=1)
    await ledger.settle(await ledger.reserve(KEY, priced.client_usd, None, lease_s=LEASE), priced)

    usage = await ledger.usage(KEY, Decimal("100"))
    assert usage["by_day"] == {
        "2026-11-03": {"usd": "0.116100", "credits": "11.6100", "images": 4},
        "2026-11-04": {"usd": "0.054000", "credits": "5.4000", "images": 1},
    }
    assert usage["by_vendor"] == {
        "callmissed": {"usd": "0.162000", "credits": "16.2000", "images": 3},
        "runflow": {"usd": "0.008100", "credits": "0.8100", "images": 2},
    }
    assert usage["spent_usd"] == "0.170100"
    assert usage["images"] == 5
    assert usage["budget_credits"] == "100"
    assert usage["remaining_credits"] == "82.9900"


async def test_usage_of_each_key_is_its_own(ledger: Ledger) -> None:
    await ledger.settle(await ledger.reserve("a", Decimal("0.05"), None, lease_s=LEASE), quote("runflow", "0.05"))
    assert (await ledger.usage("b"))["spent_usd"] == "0.000000"
    assert (await ledger.usage("b"))["by_vendor"] == {}


async def test_losses_are_recorded_for_the_gateway_never_charged_to_a_client(
    ledger: Ledger, book: MemoryLedgerStore, clock: Clock
) -> None:
    reservation = await ledger.reserve(KEY, Decimal("0.004158"), Decimal("1"), lease_s=LEASE)
    await ledger.record_loss("eachlabs", Decimal("0.00308"))
    clock.now += timedelta(days=1)
    await ledger.record_loss("eachlabs", Decimal("0.0015400"))
    await ledger.record_loss("runflow", Decimal("0.003"), event_id="attempt-7")
    await ledger.record_loss("runflow", Decimal("0.003"), event_id="attempt-7")  # a retry: counted once
    await ledger.release(reservation)

    # Operators read these tables (integer micro-USD) from the store; the gateway loss metric counts the same.
    assert await book.table("losses:vendor_usd") == {"eachlabs": 4620, "runflow": 3000}
    assert await book.table("losses:vendor_attempts") == {"eachlabs": 2, "runflow": 1}
    assert await book.table("losses:day_usd") == {"2026-11-03": 3080, "2026-11-04": 4540}
    usage = await ledger.usage(KEY, Decimal("1"))
    assert usage["spent_usd"] == "0.000000"
    assert usage["remaining_credits"] == "1.0000"


async def test_a_loss_booked_late_is_tallied_under_the_day_it_was_made(
    ledger: Ledger, book: MemoryLedgerStore, clock: Clock
) -> None:
    made_on = ledger.today()
    clock.now += timedelta(days=1)  # the store came back after midnight
    assert await ledger.record_loss("runflow", Decimal("0.003"), event_id="loss:late", day=made_on)
    assert not await ledger.record_loss("runflow", Decimal("0.003"), event_id="loss:late", day=made_on)
    assert await book.table("losses:day_usd") == {made_on: 3000}


async def test_a_replayed_response_is_recalled_without_a_new_charge(ledger: Ledger) -> None:
    assert await ledger.recall_response(KEY, "idem-1") is None
    assert await ledger.claim_idempotency(KEY, "idem-1", ttl=60) is True
    assert await ledger.claim_idempotency(KEY, "idem-1", ttl=60) is False  # the twin waits: 409
    reservation = await ledger.reserve(KEY, Decimal("0.054"), Decimal("10"), lease_s=LEASE)
    await ledger.settle(reservation, quote("callmissed", "0.054"))
    await ledger.remember_response(KEY, "idem-1", b'{"data": []}', ttl=3600)

    assert await ledger.recall_response(KEY, "idem-1") == b'{"data": []}'
    assert await ledger.recall_response("other-key", "idem-1") is None
    assert (await ledger.usage(KEY, Decimal("10")))["spent_usd"] == "0.054000"


async def test_a_failed_request_gives_its_idempotency_claim_back(ledger: Ledger) -> None:
    assert await ledger.claim_idempotency(KEY, "idem-2", ttl=60)
    await ledger.release_idempotency(KEY, "idem-2")
    assert await ledger.claim_idempotency(KEY, "idem-2", ttl=60)


def charge_record(request_id: str) -> ChargeRecord:
    return ChargeRecord(key_id=KEY, request_id=request_id, vendor="runflow", region="us", vendor_request_id=None,
                        images=1, run_seconds=None, catalog_cost_usd=Decimal("0.003"),
                        vendor_reported_cost_usd=None, client_usd=Decimal("0.004"))


async def charge_each(ledger: Ledger, count: int) -> None:
    for index in range(count):
        reservation = await ledger.reserve(KEY, Decimal("0.01"), None, lease_s=LEASE)
        await ledger.settle(reservation, quote("runflow", "0.004"), record=charge_record(f"r{index}"))


async def test_a_page_of_charges_says_whether_more_follow_and_where_to_read_on(ledger: Ledger) -> None:
    await charge_each(ledger, 3)
    since = datetime(2000, 1, 1, tzinfo=UTC)

    first = await ledger.charges(since, limit=2)
    rest = await ledger.charges(since, limit=2, after=first.next_after)
    beyond = await ledger.charges(since, limit=2, after=rest.next_after)

    assert ([r.request_id for r in first.records], first.has_more) == (["r0", "r1"], True)
    assert ([r.request_id for r in rest.records], rest.has_more) == (["r2"], False)
    assert (beyond.records, beyond.has_more, beyond.next_after) == ([], False, rest.next_after)
    assert (await ledger.charges(datetime.now(UTC) + timedelta(days=1), limit=2)).next_after is None


async def test_every_charge_is_read_across_as_many_pages_as_it_takes(ledger: Ledger) -> None:
    await charge_each(ledger, 7)

    pages = [page async for page in ledger.charge_pages(datetime(2000, 1, 1, tzinfo=UTC), page_size=3)]

    assert [[record.request_id for record in page] for page in pages] == [["r0", "r1", "r2"], ["r3", "r4", "r5"],
                                                                            ["r6"]]


async def test_an_empty_charge_log_is_one_empty_page(ledger: Ledger) -> None:
    assert [page async for page in ledger.charge_pages(datetime(2000, 1, 1, tzinfo=UTC))] == [[]]
