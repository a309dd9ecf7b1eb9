"""A request whose charge the state store never confirmed is answered 503 and never stays charged.

The store here is the in-memory ledger behind a switch: a settle can land while its answer is
lost (what a Redis answer read too late, or a dropped connection, does), and the store can stop
answering altogether (frozen) and come back. Whatever the order, once the store answers again a
request answered 503 is not charged, its vendor's cost is the gateway's loss, and a request
answered 200 is charged exactly once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from decimal import Decimal

import pytest

from core.errors import StateUnavailable
from core.request import ImageRequest
from core.state.ledger_store import Balance, LoggedCharge, Settled, Tally, Voided
from core.state.memory import MemoryStateStore
from core.state.memory_ledger import MemoryLedgerStore
from pricing.charge_log import ChargeRecord
from proxy.billing import ANONYMOUS
from proxy.gateway import Gateway
from proxy.settings import Settings
from proxy.wiring import Stores, assemble_gateway
from tests.proxy.routing.scripted_backend import NO_BACKOFF, ScriptedBackend, route_to

KEY = ANONYMOUS.key_id
DEADLINE_S = 0.6


class SwitchedBook(MemoryLedgerStore):
    """The memory ledger with faults: ``down`` (every call fails unrun, as a frozen Redis times
    out), and answers lost after the call ran (``lose_settle_answers``, ``lose_void_answers``),
    optionally going down right after (``down_after_lost_answer``), or down as a settle
    arrives, before it runs (``down_at_settle``); and voids that fail unrun with an error that
    is no outage (``broken_voids``: a reply redis-py raises as it is, a bug)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.lose_settle_answers = 0
        self.lose_void_answers = 0
        self.down_after_lost_answer = False
        self.down_at_settle = False
        self.broken_voids = 0
        self.settles_run = 0

    def _answering(self) -> None:
        if self.down:
            raise StateUnavailable("The state store (test) is down")

    def _lost(self) -> StateUnavailable:
        self.down = self.down_after_lost_answer
        return StateUnavailable("The state store (test) did not answer in time")

    async def hold(self, account: str, hold_id: str, amount: int, *, limit: int | None, lease_s: float) -> bool:
        self._answering()
        return await super().hold(account, hold_id, amount, limit=limit, lease_s=lease_s)

    async def settle(self, account: str, hold_id: str, charge: int, *, limit: int | None,
                     tallies: Sequence[Tally] = (), entry: bytes = b"") -> Settled:
        self.down = self.down or self.down_at_settle
        self._answering()
        self.settles_run += 1
        outcome = await super().settle(account, hold_id, charge, limit=limit, tallies=tallies, entry=entry)
        if self.lose_settle_answers:
            self.lose_settle_answers -= 1
            raise self._lost()
        return outcome

    async def void(self, account: str, hold_id: str, refund: int, *, tallies: Sequence[Tally] = (),
                   entry: bytes = b"") -> Voided:
        self._answering()
        if self.broken_voids:
            self.broken_voids -= 1
            raise RuntimeError("a void that is no outage: ERR Error running script")
        outcome = await super().void(account, hold_id, refund, tallies=tallies, entry=entry)
        if self.lose_void_answers:
            self.lose_void_answers -= 1
            raise self._lost()
        return outcome

    async def release(self, account: str, hold_id: str) -> bool:
        self._answering()
        return await super().release(account, hold_id)

    async def count(self, event_id: str, tallies: Sequence[Tally]) -> bool:
        self._answering()
        return await super().count(event_id, tallies)

    async def charges(self, since: float, limit: int = 10_000, *, after: str | None = None) -> list[LoggedCharge]:
        self._answering()
        return await super().charges(since, limit, after=after)


def gateway_over(book: SwitchedBook) -> Gateway:
    settings = Settings(simulators="off", retry=NO_BACKOFF, deadline_s=DEADLINE_S, api_keys={},
                        require_api_key=False)
    memory = MemoryStateStore()
    return assemble_gateway(settings, Stores(memory, memory, book), [route_to(ScriptedBackend("runflow"))])


REQUEST = ImageRequest(prompt="a lighthouse", width=256, height=256, seed=5)


async def serve(gateway: Gateway) -> None:
    await gateway.generate(REQUEST, base_url="http://gateway.test/", key=ANONYMOUS)


async def answered_503_after_a_charge_that_landed() -> tuple[SwitchedBook, Gateway]:
    """One request whose settle ran with its answer lost, the store down from then on: 503."""
    book = SwitchedBook()
    book.lose_settle_answers, book.down_after_lost_answer = 1, True
    served = gateway_over(book)
    with pytest.raises(StateUnavailable, match="did not confirm this request's charge"):
        await serve(served)
    return book, served


async def until_nothing_is_owed(gateway: Gateway) -> None:
    async with asyncio.timeout(10):
        while gateway.unconfirmed.owed:
            await asyncio.sleep(0.02)


async def charge_log(book: SwitchedBook) -> list[ChargeRecord]:
    return [ChargeRecord.from_entry(logged.entry, logged.at) for logged in await book.charges(since=0)]


async def test_a_charge_that_landed_with_its_answer_lost_and_no_confirmation_by_the_deadline_is_taken_back() -> None:
    """The failure seen under load: the settle ran, its answer was lost, the store froze until
    past the deadline. The client got 503, so the charge that landed is taken back."""
    book = SwitchedBook()
    book.lose_settle_answers, book.down_after_lost_answer = 1, True
    served = gateway_over(book)

    with pytest.raises(StateUnavailable, match="did not confirm this request's charge"):
        await serve(served)
    assert book.settles_run == 1
    assert served.unconfirmed.owed == 1
    assert (await book.balance(KEY)).spent > 0  # charged, unconfirmed: what must not stand

    book.down = False
    await until_nothing_is_owed(served)

    assert await book.balance(KEY) == Balance(spent=0, held=0)
    assert set((await book.table(f"key:{KEY}:day_images")).values()) == {0}
    assert set((await book.table(f"key:{KEY}:vendor_usd")).values()) == {0}
    charge, refund = await charge_log(book)
    assert refund.request_id == charge.request_id
    assert refund.client_usd == -charge.client_usd < 0
    assert refund.images == -charge.images == -1
    assert refund.catalog_cost_usd == 0
    losses = await book.table("losses:vendor_usd")
    assert Decimal(losses["runflow"]) / 10**6 == charge.catalog_cost_usd  # the vendor was paid for nothing


async def test_a_charge_that_never_landed_is_released_for_good_and_its_vendor_cost_is_a_loss() -> None:
    book = SwitchedBook()
    served = gateway_over(book)
    await serve(served)  # one request charged normally, as the baseline
    spent = (await book.balance(KEY)).spent
    book.down_at_settle = True
    with pytest.raises(StateUnavailable):
        await serve(served)
    assert book.settles_run == 1
    book.down = book.down_at_settle = False
    await until_nothing_is_owed(served)

    assert await book.balance(KEY) == Balance(spent=spent, held=0)
    assert len(await charge_log(book)) == 1
    assert (await book.table("losses:vendor_attempts")) == {"runflow": 1}


async def test_a_lost_answer_the_next_try_finds_settled_is_delivered_and_charged_once() -> None:
    """Within the deadline, a retry answers "already settled": the outcome is known, nothing is owed."""
    book = SwitchedBook()
    book.lose_settle_answers = 1
    served = gateway_over(book)

    await serve(served)

    assert book.settles_run == 2
    assert served.unconfirmed.owed == 0
    assert len(await charge_log(book)) == 1
    assert (await book.table(f"key:{KEY}:day_images")).popitem()[1] == 1


async def test_a_void_whose_own_answer_is_lost_is_tried_again_and_takes_back_once() -> None:
    book, served = await answered_503_after_a_charge_that_landed()

    book.lose_void_answers, book.down_after_lost_answer = 1, False
    book.down = False
    await until_nothing_is_owed(served)

    assert (await book.balance(KEY)).spent == 0
    assert len(await charge_log(book)) == 2


async def test_a_void_that_fails_with_an_error_that_is_no_outage_is_logged_and_tried_again(
    caplog: pytest.LogCaptureFixture
) -> None:
    """An unexpected error ended the void's task: it was dropped from what is owed, unlogged
    (the task's error was read, and nothing else), and never tried again."""
    book, served = await answered_503_after_a_charge_that_landed()

    book.broken_voids = 1
    book.down = False
    with caplog.at_level(logging.ERROR, logger="proxy.unconfirmed_charges"):
        await until_nothing_is_owed(served)

    assert (await book.balance(KEY)).spent == 0
    assert [record.images for record in await charge_log(book)] == [1, -1]
    assert any("ERR Error running script" in record.getMessage() + str(record.exc_info)
               for record in caplog.records if record.levelno == logging.ERROR)


async def test_a_client_that_hangs_up_mid_settle_is_not_charged() -> None:
    """Cancelled while a settle try is out: that try may land, so the request is voided too."""
    book = SwitchedBook()
    book.lose_settle_answers, book.down_after_lost_answer = 1, True
    served = gateway_over(book)
    request = asyncio.create_task(serve(served))
    async with asyncio.timeout(5):
        while not book.down:
            await asyncio.sleep(0)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request

    book.down = False
    await until_nothing_is_owed(served)
    assert (await book.balance(KEY)).spent == 0


async def test_stopping_with_a_void_still_owed_logs_it_for_an_operator(caplog: pytest.LogCaptureFixture) -> None:
    book, served = await answered_503_after_a_charge_that_landed()
    request_id = (await super(SwitchedBook, book).charges(since=0))[0]

    with caplog.at_level(logging.ERROR, logger="proxy.unconfirmed_charges"):
        await served.unconfirmed.aclose()

    owed = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert len(owed) == 1
    assert ChargeRecord.from_entry(request_id.entry, 0).request_id in owed[0]
    assert served.unconfirmed.owed == 0


async def test_stopping_makes_a_last_try_that_voids_when_the_store_is_back(caplog: pytest.LogCaptureFixture) -> None:
    book, served = await answered_503_after_a_charge_that_landed()
    book.down = False

    with caplog.at_level(logging.ERROR, logger="proxy.unconfirmed_charges"):
        await served.unconfirmed.aclose()  # before the background try's first pause ends

    assert not [record for record in caplog.records if record.levelno == logging.ERROR]
    assert (await book.balance(KEY)).spent == 0
