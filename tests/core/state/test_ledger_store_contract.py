"""The LedgerStore contract: memory, SQLite and Redis hold, settle and release money the same way.

Every test runs once per implementation (the ``ledger_store`` fixture in conftest.py is
parametrised). Leases are short (0.15 s) and the waits only just longer.
"""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from core.errors import InvalidRequest
from core.state.ledger_store import (
    POSITION_PATTERN,
    Balance,
    HoldState,
    LedgerStore,
    LoggedCharge,
    Settled,
    Tally,
    Voided,
)
from tests.state_clock import freeze_ledger_time

SHORT_LEASE = 0.15
PAST_SHORT_LEASE = 0.25
LEASE = 60.0


async def test_holds_fit_up_to_the_limit_inclusive(ledger_store: LedgerStore) -> None:
    assert await ledger_store.hold("acct", "h1", 30, limit=100, lease_s=LEASE)
    assert await ledger_store.hold("acct", "h2", 70, limit=100, lease_s=LEASE)
    assert not await ledger_store.hold("acct", "h3", 1, limit=100, lease_s=LEASE)
    assert await ledger_store.balance("acct") == Balance(spent=0, held=100)


async def test_holding_again_with_the_same_id_counts_once(ledger_store: LedgerStore) -> None:
    assert await ledger_store.hold("acct", "h1", 60, limit=100, lease_s=LEASE)
    assert await ledger_store.hold("acct", "h1", 60, limit=100, lease_s=LEASE)
    assert await ledger_store.balance("acct") == Balance(spent=0, held=60)


async def test_raising_a_hold_needs_room_only_for_the_difference(ledger_store: LedgerStore) -> None:
    assert await ledger_store.hold("acct", "h1", 60, limit=100, lease_s=LEASE)
    assert await ledger_store.hold("acct", "h1", 100, limit=100, lease_s=LEASE)
    assert await ledger_store.balance("acct") == Balance(spent=0, held=100)


async def test_a_refused_raise_keeps_the_hold_as_it_was(ledger_store: LedgerStore) -> None:
    assert await ledger_store.hold("acct", "h1", 40, limit=100, lease_s=LEASE)
    assert await ledger_store.hold("acct", "h2", 50, limit=100, lease_s=LEASE)
    assert not await ledger_store.hold("acct", "h1", 60, limit=100, lease_s=LEASE)
    assert await ledger_store.balance("acct") == Balance(spent=0, held=90)


@pytest.mark.parametrize("limit", [100, None])
async def test_a_hold_is_never_lowered(ledger_store: LedgerStore, limit: int | None) -> None:
    assert await ledger_store.hold("acct", "h1", 80, limit=limit, lease_s=LEASE)
    assert await ledger_store.hold("acct", "h1", 10, limit=limit, lease_s=LEASE)
    assert await ledger_store.balance("acct") == Balance(spent=0, held=80)


@pytest.mark.parametrize("limit", [100, None])
async def test_an_expired_hold_held_again_counts_only_its_new_amount(ledger_store: LedgerStore,
                                                                     limit: int | None) -> None:
    assert await ledger_store.hold("acct", "h1", 80, limit=limit, lease_s=SHORT_LEASE)
    await asyncio.sleep(PAST_SHORT_LEASE)
    assert await ledger_store.hold("acct", "h1", 10, limit=limit, lease_s=LEASE)
    assert await ledger_store.balance("acct") == Balance(spent=0, held=10)


async def test_without_a_limit_every_hold_fits_and_is_counted(ledger_store: LedgerStore) -> None:
    for index in range(3):
        assert await ledger_store.hold("acct", f"h{index}", 10**9, limit=None, lease_s=LEASE)
    assert await ledger_store.balance("acct") == Balance(spent=0, held=3 * 10**9)


async def test_an_expired_hold_stops_counting_and_its_room_comes_back(ledger_store: LedgerStore) -> None:
    assert await ledger_store.hold("acct", "killed", 100, limit=100, lease_s=SHORT_LEASE)
    assert not await ledger_store.hold("acct", "next", 1, limit=100, lease_s=LEASE)
    await asyncio.sleep(PAST_SHORT_LEASE)
    assert await ledger_store.balance("acct") == Balance(spent=0, held=0)
    assert await ledger_store.hold("acct", "next", 100, limit=100, lease_s=LEASE)


async def test_holding_again_renews_the_lease(ledger_store: LedgerStore) -> None:
    assert await ledger_store.hold("acct", "h1", 10, limit=None, lease_s=SHORT_LEASE)
    assert await ledger_store.hold("acct", "h1", 10, limit=None, lease_s=LEASE)
    await asyncio.sleep(PAST_SHORT_LEASE)
    assert await ledger_store.balance("acct") == Balance(spent=0, held=10)


async def test_settle_closes_the_hold_and_writes_the_charge_with_its_tallies(ledger_store: LedgerStore) -> None:
    assert await ledger_store.hold("acct", "h1", 50, limit=100, lease_s=LEASE)
    tallies = [Tally("acct:day_usd", "2026-11-03", 40), Tally("acct:vendor_images", "runflow", 2)]
    assert await ledger_store.settle("acct", "h1", 40, limit=100, tallies=tallies) is Settled.CHARGED
    assert await ledger_store.balance("acct") == Balance(spent=40, held=0)
    assert await ledger_store.table("acct:day_usd") == {"2026-11-03": 40}
    assert await ledger_store.table("acct:vendor_images") == {"runflow": 2}


async def test_settling_twice_or_releasing_after_changes_nothing(ledger_store: LedgerStore) -> None:
    assert await ledger_store.hold("acct", "h1", 50, limit=100, lease_s=LEASE)
    tallies = [Tally("acct:day_usd", "d", 40)]
    assert await ledger_store.settle("acct", "h1", 40, limit=100, tallies=tallies) is Settled.CHARGED
    assert await ledger_store.settle("acct", "h1", 40, limit=100, tallies=tallies) is Settled.ALREADY_SETTLED
    assert await ledger_store.release("acct", "h1") is False
    assert await ledger_store.balance("acct") == Balance(spent=40, held=0)
    assert await ledger_store.table("acct:day_usd") == {"d": 40}


async def test_a_settle_tells_a_hold_closed_by_a_settle_from_one_closed_without_a_charge(
    ledger_store: LedgerStore,
) -> None:
    """Two runs of an async job settle the same hold: the one that finds it settled is paid for
    by that charge, the one that finds it released or voided is not paid for at all (another run
    gave the hold back), even where no limit is checked and a lease ran out."""
    assert await ledger_store.hold("acct", "settled", 50, limit=None, lease_s=LEASE)
    assert await ledger_store.settle("acct", "settled", 40, limit=None) is Settled.CHARGED
    assert await ledger_store.hold("acct", "released", 50, limit=None, lease_s=LEASE)
    assert await ledger_store.release("acct", "released") is True
    assert await ledger_store.void("acct", "voided", 40) is Voided.RELEASED  # its settle never landed
    assert await ledger_store.hold("acct", "refunded", 50, limit=None, lease_s=LEASE)
    assert await ledger_store.settle("acct", "refunded", 40, limit=None) is Settled.CHARGED
    assert await ledger_store.void("acct", "refunded", 40) is Voided.REFUNDED

    assert await ledger_store.settle("acct", "settled", 40, limit=None) is Settled.ALREADY_SETTLED
    for hold_id in ("released", "voided", "refunded"):
        assert await ledger_store.settle("acct", hold_id, 40, limit=None) is Settled.ALREADY_RELEASED, hold_id
        assert await ledger_store.settle("acct", hold_id, 40, limit=100) is Settled.ALREADY_RELEASED, hold_id
    assert await ledger_store.balance("acct") == Balance(spent=40, held=0)


async def test_release_gives_the_hold_back_once_and_blocks_a_later_settle(ledger_store: LedgerStore) -> None:
    assert await ledger_store.hold("acct", "h1", 100, limit=100, lease_s=LEASE)
    assert await ledger_store.release("acct", "h1") is True
    assert await ledger_store.release("acct", "h1") is False
    assert await ledger_store.settle("acct", "h1", 100, limit=100) is Settled.ALREADY_RELEASED
    assert await ledger_store.balance("acct") == Balance(spent=0, held=0)
    assert await ledger_store.hold("acct", "h2", 100, limit=100, lease_s=LEASE)


async def test_voiding_a_settled_hold_takes_its_charge_back_once(ledger_store: LedgerStore) -> None:
    """A settle whose answer was lost did land: the void takes back exactly what it wrote."""
    assert await ledger_store.hold("acct", "h1", 50, limit=100, lease_s=LEASE)
    tallies = [Tally("acct:day_usd", "d", 40), Tally("acct:day_images", "d", 1)]
    assert await ledger_store.settle("acct", "h1", 40, limit=100, tallies=tallies, entry=b"charge") is Settled.CHARGED
    taken_back = [Tally("acct:day_usd", "d", -40), Tally("acct:day_images", "d", -1), Tally("losses", "v", 25)]
    assert await ledger_store.void("acct", "h1", 40, tallies=taken_back, entry=b"refund") is Voided.REFUNDED
    assert await ledger_store.void("acct", "h1", 40, tallies=taken_back, entry=b"refund") is Voided.UNCHANGED
    assert await ledger_store.balance("acct") == Balance(spent=0, held=0)
    assert await ledger_store.table("acct:day_usd") == {"d": 0}
    assert await ledger_store.table("acct:day_images") == {"d": 0}
    assert await ledger_store.table("losses") == {"v": 25}
    assert [charge.entry for charge in await ledger_store.charges(since=0)] == [b"charge", b"refund"]
    assert await ledger_store.settle("acct", "h1", 40, limit=100, tallies=tallies) is Settled.ALREADY_RELEASED
    assert await ledger_store.balance("acct") == Balance(spent=0, held=0)


async def test_voiding_an_open_hold_releases_it_and_no_settle_can_charge_it_after(ledger_store: LedgerStore) -> None:
    """A settle whose answer was lost never landed: the void releases the hold for good."""
    assert await ledger_store.hold("acct", "h1", 50, limit=100, lease_s=LEASE)
    assert await ledger_store.void("acct", "h1", 40, tallies=[Tally("t", "f", -40)], entry=b"refund") \
        is Voided.RELEASED
    assert await ledger_store.balance("acct") == Balance(spent=0, held=0)
    assert await ledger_store.settle("acct", "h1", 40, limit=100, tallies=[Tally("t", "f", 40)]) \
        is Settled.ALREADY_RELEASED
    assert await ledger_store.void("acct", "h1", 40, tallies=[Tally("t", "f", -40)]) is Voided.UNCHANGED
    assert await ledger_store.balance("acct") == Balance(spent=0, held=0)
    assert await ledger_store.table("t") == {}
    assert await ledger_store.charges(since=0) == []


async def test_voiding_a_released_hold_changes_nothing(ledger_store: LedgerStore) -> None:
    """Someone else (a job's runner) released the hold: there is no charge to take back."""
    assert await ledger_store.hold("acct", "h1", 50, limit=100, lease_s=LEASE)
    assert await ledger_store.hold("acct", "h2", 30, limit=100, lease_s=LEASE)
    assert await ledger_store.settle("acct", "h2", 30, limit=100) is Settled.CHARGED
    assert await ledger_store.release("acct", "h1")
    assert await ledger_store.void("acct", "h1", 40, tallies=[Tally("t", "f", -40)], entry=b"x") is Voided.UNCHANGED
    assert await ledger_store.balance("acct") == Balance(spent=30, held=0)
    assert await ledger_store.table("t") == {}
    assert await ledger_store.charges(since=0) == []


async def test_a_holds_state_says_whether_it_was_settled_released_or_is_not_closed(ledger_store: LedgerStore) -> None:
    assert await ledger_store.hold_state("acct", "never") is HoldState.OPEN
    for hold_id in ("open", "settled", "released", "voided", "refunded"):
        assert await ledger_store.hold("acct", hold_id, 10, limit=None, lease_s=LEASE)
    assert await ledger_store.settle("acct", "settled", 10, limit=None) is Settled.CHARGED
    assert await ledger_store.settle("acct", "refunded", 10, limit=None) is Settled.CHARGED
    assert await ledger_store.release("acct", "released")
    assert await ledger_store.void("acct", "voided", 10) is Voided.RELEASED
    assert await ledger_store.void("acct", "refunded", 10) is Voided.REFUNDED
    states = {hold_id: await ledger_store.hold_state("acct", hold_id)
              for hold_id in ("open", "settled", "released", "voided", "refunded")}
    assert states == {"open": HoldState.OPEN, "settled": HoldState.SETTLED, "released": HoldState.RELEASED,
                      "voided": HoldState.RELEASED, "refunded": HoldState.RELEASED}


@pytest.mark.parametrize("limit", [100, None])
async def test_a_closed_hold_cannot_be_held_again(ledger_store: LedgerStore, limit: int | None) -> None:
    assert await ledger_store.hold("acct", "h1", 10, limit=limit, lease_s=LEASE)
    assert await ledger_store.release("acct", "h1")
    assert not await ledger_store.hold("acct", "h1", 10, limit=limit, lease_s=LEASE)
    assert await ledger_store.balance("acct") == Balance(spent=0, held=0)


async def test_settling_an_expired_hold_charges_only_when_the_limit_has_room(ledger_store: LedgerStore) -> None:
    assert await ledger_store.hold("acct", "late", 60, limit=100, lease_s=SHORT_LEASE)
    assert await ledger_store.hold("acct", "early", 30, limit=100, lease_s=SHORT_LEASE)
    await asyncio.sleep(PAST_SHORT_LEASE)
    assert await ledger_store.hold("acct", "other", 50, limit=100, lease_s=LEASE)
    assert await ledger_store.settle("acct", "late", 60, limit=100) is Settled.REFUSED
    assert await ledger_store.balance("acct") == Balance(spent=0, held=50)
    assert await ledger_store.settle("acct", "early", 30, limit=100) is Settled.CHARGED
    assert await ledger_store.balance("acct") == Balance(spent=30, held=50)


async def test_a_charge_above_its_live_hold_is_written_only_when_the_limit_has_room(
    ledger_store: LedgerStore,
) -> None:
    """A hold held again for less (its lease ran out, another run of the job held it at a cheaper
    price) and settled at the larger charge: only the part the hold covers is free of the limit."""
    assert await ledger_store.hold("acct", "again", 20, limit=100, lease_s=LEASE)
    assert await ledger_store.hold("acct", "other", 70, limit=100, lease_s=LEASE)
    assert await ledger_store.settle("acct", "again", 40, limit=100, entry=b"x") is Settled.REFUSED
    assert await ledger_store.balance("acct") == Balance(spent=0, held=90)
    assert await ledger_store.charges(since=0) == []
    assert await ledger_store.hold_state("acct", "again") is HoldState.OPEN
    assert await ledger_store.settle("acct", "again", 30, limit=100) is Settled.CHARGED
    assert await ledger_store.balance("acct") == Balance(spent=30, held=70)


async def test_a_charge_within_its_live_hold_is_written_whatever_the_limit(ledger_store: LedgerStore) -> None:
    assert await ledger_store.hold("acct", "h1", 60, limit=100, lease_s=LEASE)
    assert await ledger_store.settle("acct", "h1", 60, limit=10) is Settled.CHARGED
    assert await ledger_store.balance("acct") == Balance(spent=60, held=0)


async def test_concurrent_holds_never_pass_the_limit(ledger_store: LedgerStore) -> None:
    results = await asyncio.gather(
        *(ledger_store.hold("acct", f"h{index}", 3, limit=60, lease_s=LEASE) for index in range(50))
    )
    assert results.count(True) == 20
    assert await ledger_store.balance("acct") == Balance(spent=0, held=60)


async def test_spent_money_counts_against_the_limit(ledger_store: LedgerStore) -> None:
    assert await ledger_store.hold("acct", "h1", 70, limit=100, lease_s=LEASE)
    assert await ledger_store.settle("acct", "h1", 70, limit=100) is Settled.CHARGED
    assert not await ledger_store.hold("acct", "h2", 31, limit=100, lease_s=LEASE)
    assert await ledger_store.hold("acct", "h2", 30, limit=100, lease_s=LEASE)


async def test_accounts_are_independent(ledger_store: LedgerStore) -> None:
    assert await ledger_store.hold("a", "h1", 100, limit=100, lease_s=LEASE)
    assert await ledger_store.hold("b", "h2", 100, limit=100, lease_s=LEASE)
    assert await ledger_store.balance("b") == Balance(spent=0, held=100)
    assert await ledger_store.balance("nobody") == Balance(spent=0, held=0)


async def test_an_event_is_counted_once(ledger_store: LedgerStore) -> None:
    tallies = [Tally("losses:vendor_usd", "eachlabs", 3080), Tally("losses:vendor_attempts", "eachlabs", 1)]
    assert await ledger_store.count("loss-1", tallies) is True
    assert await ledger_store.count("loss-1", tallies) is False
    assert await ledger_store.count("loss-2", tallies) is True
    assert await ledger_store.table("losses:vendor_usd") == {"eachlabs": 6160}
    assert await ledger_store.table("losses:vendor_attempts") == {"eachlabs": 2}


async def test_an_event_without_tallies_is_still_counted_once(ledger_store: LedgerStore) -> None:
    assert await ledger_store.count("seen-1", []) is True
    assert await ledger_store.count("seen-1", []) is False
    assert await ledger_store.count("seen-2", []) is True


async def test_an_unknown_table_is_empty(ledger_store: LedgerStore) -> None:
    assert await ledger_store.table("nothing") == {}


async def test_large_amounts_stay_exact(ledger_store: LedgerStore) -> None:
    big = 10**15 + 7  # a billion dollars in micro-USD, past the 14 digits Lua would print exactly
    assert await ledger_store.hold("acct", "h1", big, limit=None, lease_s=LEASE)
    assert await ledger_store.balance("acct") == Balance(spent=0, held=big)
    assert await ledger_store.settle("acct", "h1", big, limit=None) is Settled.CHARGED
    assert await ledger_store.balance("acct") == Balance(spent=big, held=0)


async def test_a_charge_appends_its_entry_to_the_charge_log_once(ledger_store: LedgerStore) -> None:
    before = time.time() - 1
    assert await ledger_store.hold("acct", "h1", 50, limit=100, lease_s=LEASE)
    assert await ledger_store.settle("acct", "h1", 40, limit=100, entry=b'{"n": 1}') is Settled.CHARGED
    assert await ledger_store.settle("acct", "h1", 40, limit=100, entry=b'{"n": 1}') is Settled.ALREADY_SETTLED
    assert await ledger_store.hold("acct", "h2", 10, limit=100, lease_s=LEASE)
    assert await ledger_store.settle("acct", "h2", 10, limit=100) is Settled.CHARGED  # no entry: none logged
    logged = await ledger_store.charges(since=before)
    assert [charge.entry for charge in logged] == [b'{"n": 1}']
    assert before <= logged[0].at <= time.time() + 1


async def test_a_refused_charge_logs_nothing(ledger_store: LedgerStore) -> None:
    assert await ledger_store.hold("acct", "late", 60, limit=100, lease_s=SHORT_LEASE)
    await asyncio.sleep(PAST_SHORT_LEASE)
    assert await ledger_store.hold("acct", "other", 50, limit=100, lease_s=LEASE)
    assert await ledger_store.settle("acct", "late", 60, limit=100, entry=b"x") is Settled.REFUSED
    assert await ledger_store.charges(since=0) == []


async def test_the_charge_log_is_read_from_a_time_on_oldest_first(ledger_store: LedgerStore) -> None:
    for index in range(3):
        assert await ledger_store.hold("acct", f"h{index}", 1, limit=None, lease_s=LEASE)
        assert await ledger_store.settle("acct", f"h{index}", 1, limit=None, entry=f"{index}".encode())
        await asyncio.sleep(0.02)
    everything = await ledger_store.charges(since=0)
    assert [charge.entry for charge in everything] == [b"0", b"1", b"2"]
    later = await ledger_store.charges(since=everything[1].at)
    assert [charge.entry for charge in later] == [b"1", b"2"]
    assert [charge.entry for charge in await ledger_store.charges(since=0, limit=2)] == [b"0", b"1"]


@pytest.fixture
def one_instant(monkeypatch: pytest.MonkeyPatch) -> None:
    freeze_ledger_time(monkeypatch)


async def log_charges(ledger_store: LedgerStore, count: int, prefix: str = "") -> None:
    for index in range(count):
        hold_id = f"{prefix}h{index}"
        assert await ledger_store.hold("acct", hold_id, 1, limit=None, lease_s=LEASE)
        assert await ledger_store.settle("acct", hold_id, 1, limit=None, entry=f"{prefix}{index}".encode())


async def read_in_pages(ledger_store: LedgerStore, since: float, size: int,
                        after: str | None = None) -> list[list[LoggedCharge]]:
    pages = []
    while page := await ledger_store.charges(since, size, after=after):
        pages.append(page)
        after = page[-1].position
    return pages


@pytest.mark.usefixtures("one_instant")
async def test_paging_from_each_pages_last_position_returns_every_charge_once_in_order(
        ledger_store: LedgerStore) -> None:
    await log_charges(ledger_store, 23)

    pages = await read_in_pages(ledger_store, since=0, size=4)

    assert [len(page) for page in pages] == [4, 4, 4, 4, 4, 3]
    assert [charge.entry for page in pages for charge in page] == [f"{i}".encode() for i in range(23)]
    assert len({charge.position for page in pages for charge in page}) == 23


@pytest.mark.usefixtures("one_instant")
async def test_charges_written_after_a_page_are_on_the_next_one(ledger_store: LedgerStore) -> None:
    await log_charges(ledger_store, 3)
    first = await ledger_store.charges(0, 10)
    assert await ledger_store.charges(0, 10, after=first[-1].position) == []

    await log_charges(ledger_store, 2, prefix="late")

    later = await ledger_store.charges(0, 10, after=first[-1].position)
    assert [charge.entry for charge in later] == [b"late0", b"late1"]


async def test_a_page_after_a_position_still_starts_no_earlier_than_since(ledger_store: LedgerStore) -> None:
    await log_charges(ledger_store, 2)
    await asyncio.sleep(0.02)
    await log_charges(ledger_store, 2, prefix="new")
    everything = await ledger_store.charges(0)

    page = await ledger_store.charges(everything[2].at, 10, after=everything[0].position)

    assert [charge.entry for charge in page] == [b"new0", b"new1"]


@pytest.mark.parametrize("position", ["", "nonsense", "12-x", "-1", "1-2-3", "1.5-2", "10000000000000000000-0", " 1-2"])
async def test_an_after_not_of_a_positions_form_is_an_invalid_after(ledger_store: LedgerStore, position: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        await ledger_store.charges(0, 10, after=position)
    assert refused.value.param == "after"


@pytest.mark.parametrize(("position", "entries"), [
    ("0-0", [b"0", b"1"]), ("9218868437227405312-0", []), ("9999999999999999999-9999999999999999999", []),
])
async def test_any_position_of_that_form_is_a_place_in_the_log(ledger_store: LedgerStore, position: str,
                                                               entries: list[bytes]) -> None:
    """What the OpenAPI document allows is a page, never an error: ``0-0`` is before every entry
    a store writes, the largest numbers after them all."""
    await log_charges(ledger_store, 2)
    page = await ledger_store.charges(0, 10, after=position)
    assert [charge.entry for charge in page] == entries
    assert all(re.fullmatch(POSITION_PATTERN, charge.position) for charge in await ledger_store.charges(0))
