"""A gateway loss the state store did not book is written down and booked once the store answers
again: by the same process, or by the next one on the data directory when the first was killed;
and a journal replayed after its ``paid`` line was lost books nothing twice.

Real stores, each through a real outage: the embedded SQLite with its file locked by another
writer (each write waits the busy timeout, then fails), and a real ``redis-server`` frozen with
SIGSTOP (each call times out). The killed process is a real one, killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.errors import JobFailed, StateUnavailable
from core.state.ledger_store import Tally
from core.state.sqlite_database import DATABASE_NAME
from proxy.gateway import Gateway
from proxy.metrics import REGISTRY
from proxy.owed_losses import OWE_LOSS
from proxy.owed_voids import OWED_VOIDS_DIRECTORY
from proxy.settings import Settings
from proxy.wiring import Stores, assemble_gateway, build_stores
from tests.proxy.routing.scripted_backend import NO_BACKOFF, ScriptedBackend, route_to
from tests.proxy.test_owed_voids import answered_503_with_the_store_gone, gateway_on
from tests.proxy.test_unconfirmed_charges import KEY, REQUEST, SwitchedBook, until_nothing_is_owed
from tests.redis_server import RedisServer

ROOT = Path(__file__).parents[2]
VENDOR = "runflow"
STORES = ["sqlite", pytest.param("redis", marks=pytest.mark.redis)]
BILLED_FAILURE = JobFailed("runflow: the job ran and failed", billed=True, vendor_cost_usd=Decimal("0.0025"))


class Outage:
    """One real store (``settings`` say which) that ``down()`` stops answering until ``up()``."""

    def __init__(self, kind: str, data_dir: Path) -> None:
        self.kind = kind
        self.data_dir = data_dir
        self._server = RedisServer() if kind == "redis" else None
        self._blocker: sqlite3.Connection | None = None

    def settings(self) -> dict[str, Any]:
        """What a gateway process on this store is built with (JSON, for a child process too)."""
        url = self._server.start() if self._server is not None else "redis://127.0.0.1:1/0"
        return {"simulators": "off", "api_keys": {}, "require_api_key": False, "state_backend": self.kind,
                "redis_url": url, "state_timeout_s": 0.3, "data_dir": str(self.data_dir)}

    def down(self) -> None:
        if self._server is not None:
            self._server.freeze()
            return
        self._blocker = sqlite3.connect(self.data_dir / DATABASE_NAME, isolation_level=None)
        self._blocker.execute("BEGIN IMMEDIATE")  # every other writer waits its busy timeout, then fails

    def up(self) -> None:
        if self._server is not None:
            self._server.thaw()
        elif self._blocker is not None:
            self._blocker.execute("ROLLBACK")
            self._blocker.close()
            self._blocker = None

    def stop(self) -> None:
        self.up()
        if self._server is not None:
            self._server.stop()


@pytest.fixture(params=STORES)
def outage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Outage]:
    store = Outage(request.param, tmp_path / "data")
    yield store
    store.stop()


@contextmanager
def store_down(outage: Outage) -> Iterator[None]:
    outage.down()
    try:
        yield
    finally:
        outage.up()


@contextmanager
def gateway_process(outage: Outage) -> Iterator[tuple[Gateway, Stores]]:
    """A gateway process's gateway and stores on ``outage``'s store and data directory."""
    settings = Settings(retry=NO_BACKOFF, **outage.settings())
    stores = build_stores(settings)
    yield assemble_gateway(settings, stores, [route_to(ScriptedBackend(VENDOR))]), stores


@pytest.fixture
async def gateway(outage: Outage) -> AsyncIterator[tuple[Gateway, Stores]]:
    with gateway_process(outage) as (served, stores):
        yield served, stores
        await served.unconfirmed.aclose()
        await stores.aclose()


def losses_counted() -> float:
    return REGISTRY.get_sample_value("boltgate_gateway_loss_usd_total", {"backend": VENDOR}) or 0.0


def losses_pending() -> float:
    return REGISTRY.get_sample_value("boltgate_gateway_losses_pending") or 0.0


async def losses_booked(stores: Stores) -> tuple[dict[str, int], dict[str, int]]:
    """The ledger's losses: attempts and micro-USD, per vendor."""
    return await stores.book.table("losses:vendor_attempts"), await stores.book.table("losses:vendor_usd")


def journal_lines(data_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for path in sorted((data_dir / OWED_VOIDS_DIRECTORY).glob("*.jsonl"))
            for line in path.read_bytes().splitlines()]


async def test_a_loss_the_store_did_not_book_is_booked_once_it_answers_again(
    outage: Outage, gateway: tuple[Gateway, Stores],
) -> None:
    served, stores = gateway
    route = served.router.routes[0]
    cost = served.billing.quote(VENDOR, REQUEST).upstream_usd
    counted_before, pending_before = losses_counted(), losses_pending()
    with store_down(outage):
        await served.billing.record_hedge_loss(route, REQUEST, None)  # a hedge's loser: counted at every call
        assert served.unconfirmed.owed == 1
        assert losses_pending() == pending_before + 1
        (owed,) = journal_lines(outage.data_dir)
        assert owed[OWE_LOSS]["vendor"] == VENDOR and Decimal(owed[OWE_LOSS]["usd"]) == cost
        assert losses_counted() == counted_before  # not booked: not counted

    await until_nothing_is_owed(served)
    assert await losses_booked(stores) == ({VENDOR: 1}, {VENDOR: int(cost * 1_000_000)})
    assert losses_counted() == pytest.approx(counted_before + float(cost))
    assert losses_pending() == pending_before
    assert journal_lines(outage.data_dir)[-1] == {"paid": owed[OWE_LOSS]["id"]}


OWING_PROCESS = """
import asyncio, json, sys
from proxy.settings import Settings
from proxy.wiring import assemble_gateway, build_stores
from tests.proxy.routing.scripted_backend import NO_BACKOFF, ScriptedBackend, route_to
from tests.proxy.test_unconfirmed_charges import REQUEST

async def main():
    settings = Settings(retry=NO_BACKOFF, **json.loads(sys.argv[1]))
    gateway = assemble_gateway(settings, build_stores(settings), [route_to(ScriptedBackend("runflow"))])
    print("built", flush=True)
    sys.stdin.readline()  # the store is down now
    await gateway.billing.record_hedge_loss(gateway.router.routes[0], REQUEST, None)
    print("owed" if gateway.unconfirmed.owed == 1 else "not owed", flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


def killed_while_owing_a_loss(outage: Outage) -> None:
    """A real gateway process that met the store down as it booked a loss, SIGKILLed while it
    still owed it (before it could book it); the store answers again after."""
    with gateway_process(outage) as (_, stores):  # the store's schema made before it goes down
        asyncio.run(stores.aclose())
    child = subprocess.Popen([sys.executable, "-c", OWING_PROCESS, json.dumps(outage.settings())], cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None and child.stdout is not None
    try:
        assert child.stdout.readline() == "built\n"
        with store_down(outage):
            child.stdin.write("go\n")
            child.stdin.flush()
            assert child.stdout.readline() == "owed\n"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)


async def next_start_books(outage: Outage) -> tuple[int, tuple[dict[str, int], dict[str, int]]]:
    """A process started on the data directory: what it took over, and the ledger's losses once
    it owes nothing (stopped, as a gateway stops)."""
    with gateway_process(outage) as (served, stores):
        try:
            taken_over = served.unconfirmed.resume()
            await until_nothing_is_owed(served)
            await served.unconfirmed.aclose()
            return taken_over, await losses_booked(stores)
        finally:
            await stores.aclose()


async def test_a_loss_owed_by_a_killed_process_is_booked_once_by_the_next_start(outage: Outage) -> None:
    await asyncio.to_thread(killed_while_owing_a_loss, outage)
    counted_before = losses_counted()

    taken_over, booked = await next_start_books(outage)
    assert taken_over == 1
    assert booked[0] == {VENDOR: 1}
    assert losses_counted() > counted_before  # counted when booked, here
    assert list((outage.data_dir / OWED_VOIDS_DIRECTORY).iterdir()) == []  # nothing owed, nothing kept

    assert await next_start_books(outage) == (0, booked)  # a later start finds nothing more


async def test_a_journal_replayed_after_its_paid_line_was_lost_books_nothing_twice(outage: Outage) -> None:
    """The loss is one counted at every call (a hedge's loser): only the event id given when it
    was written down makes its second booking the same event as the first."""
    await asyncio.to_thread(killed_while_owing_a_loss, outage)
    directory = outage.data_dir / OWED_VOIDS_DIRECTORY
    (left,) = directory.iterdir()
    owing = left.read_bytes()

    _, booked = await next_start_books(outage)
    assert booked[0] == {VENDOR: 1}
    # The process that booked it killed before its "paid" line: its file as it would have left it.
    (directory / "killed-after-booking.jsonl").write_bytes(owing)
    counted_before = losses_counted()

    assert await next_start_books(outage) == (1, booked)  # taken over, and booked nothing more
    assert losses_counted() == counted_before


async def test_a_loss_still_owed_at_stop_is_left_written_down_for_the_next_start(
    outage: Outage, caplog: pytest.LogCaptureFixture,
) -> None:
    with gateway_process(outage) as (served, stores):
        with store_down(outage), caplog.at_level(logging.ERROR, logger="proxy.unconfirmed_charges"):
            await served.billing.record_loss(served.router.routes[0], REQUEST, BILLED_FAILURE)
            await served.unconfirmed.aclose()  # its last try fails too
        await stores.aclose()
    assert any("stopping with a loss not booked" in record.getMessage() for record in caplog.records)

    taken_over, booked = await next_start_books(outage)
    assert taken_over == 1
    assert booked == ({VENDOR: 1}, {VENDOR: 2500})


class CountsDown(SwitchedBook):
    """The switched ledger whose ``count`` (a loss's booking) can fail while the rest answers."""

    counts_down = False

    async def count(self, event_id: str, tallies: Sequence[Tally]) -> bool:
        if self.counts_down:
            raise StateUnavailable("The state store (test) did not answer in time")
        return await super().count(event_id, tallies)


async def test_a_loss_owed_by_a_voids_last_try_at_stop_is_left_for_the_next_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """The void is made at stop, and the booking of its vendor's cost is what the store does not
    answer: the journal must not be removed as owing nothing."""
    book = CountsDown()
    first = gateway_on(book, tmp_path)
    with caplog.at_level(logging.WARNING, logger="proxy.unconfirmed_charges"):
        await answered_503_with_the_store_gone(book, first)
        async with asyncio.timeout(10):
            while not any("owing a void" in record.getMessage() for record in caplog.records):
                await asyncio.sleep(0.01)  # its first try failed: the next one is a pause away
        book.down, book.counts_down = False, True
        await first.unconfirmed.aclose()  # the void's last try makes it; its loss is not booked
    assert any("stopping with a loss not booked" in record.getMessage() for record in caplog.records)
    assert (await book.balance(KEY)).spent == 0
    book.counts_down = False

    second = gateway_on(book, tmp_path)
    assert second.unconfirmed.resume() == 1  # the loss only: the void was made
    await until_nothing_is_owed(second)
    await second.unconfirmed.aclose()
    assert await book.table("losses:vendor_attempts") == {VENDOR: 1}
