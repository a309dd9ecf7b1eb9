"""Voids owed are written down under the data directory, and a process that starts there makes
the ones a gone process still owed: a killed process no longer leaves a client charged for a
request it answered 503.

The file of a process that runs is locked and never taken; a process killed with SIGKILL (a real
one here) lets go of its lock, and its file is taken over, read back exactly and removed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from core.errors import StateUnavailable
from core.state.ledger_store import Balance
from core.state.memory import MemoryStateStore
from proxy.gateway import Gateway
from proxy.owed_losses import OwedLoss
from proxy.owed_voids import OWED_VOIDS_DIRECTORY, OwedVoidsJournal
from proxy.settings import Settings
from proxy.wiring import Stores, assemble_gateway
from tests.proxy.routing.scripted_backend import NO_BACKOFF, ScriptedBackend, route_to
from tests.proxy.test_kept_charge import PER_IMAGE_WITHOUT_BUDGET, TIME_BILLED
from tests.proxy.test_unconfirmed_charges import (
    DEADLINE_S,
    KEY,
    SwitchedBook,
    charge_log,
    serve,
    until_nothing_is_owed,
)

ROOT = Path(__file__).parents[2]
BROKEN = 1_000_000


def gateway_on(book: SwitchedBook, data_dir: Path) -> Gateway:
    """A gateway process's gateway over ``book`` (the store every process shares) with its data
    directory at ``data_dir``."""
    settings = Settings(simulators="off", retry=NO_BACKOFF, deadline_s=DEADLINE_S, api_keys={},
                        require_api_key=False, data_dir=data_dir,
                        image_dir=data_dir.with_name(f"{data_dir.name}-images"))  # data_dir may be unwritable
    memory = MemoryStateStore()
    return assemble_gateway(settings, Stores(memory, memory, book), [route_to(ScriptedBackend("runflow"))])


async def answered_503_with_the_store_gone(book: SwitchedBook, gateway: Gateway) -> None:
    """A request whose settle landed with its answer lost, the store down from then on."""
    book.lose_settle_answers, book.down_after_lost_answer = 1, True
    with pytest.raises(StateUnavailable, match="did not confirm this request's charge"):
        await serve(gateway)
    assert gateway.unconfirmed.owed == 1


async def test_a_void_still_owed_at_stop_is_made_by_the_next_start_on_the_data_directory(tmp_path: Path) -> None:
    book = SwitchedBook()
    first = gateway_on(book, tmp_path)
    await answered_503_with_the_store_gone(book, first)
    await first.unconfirmed.aclose()  # the store still down: the debt is left written down
    book.down = False
    assert (await book.balance(KEY)).spent > 0  # what must not stand

    second = gateway_on(book, tmp_path)
    assert second.unconfirmed.resume() == 1
    await until_nothing_is_owed(second)
    await second.unconfirmed.aclose()

    assert await book.balance(KEY) == Balance(spent=0, held=0)
    charge, refund = await charge_log(book)
    assert refund.request_id == charge.request_id and refund.client_usd == -charge.client_usd
    assert list((tmp_path / OWED_VOIDS_DIRECTORY).iterdir()) == []  # nothing owed, nothing kept
    assert gateway_on(book, tmp_path).unconfirmed.resume() == 0


async def test_a_void_made_before_the_stop_is_not_made_again(tmp_path: Path) -> None:
    book = SwitchedBook()
    first = gateway_on(book, tmp_path)
    await answered_503_with_the_store_gone(book, first)
    book.down = False
    await until_nothing_is_owed(first)
    await answered_503_with_the_store_gone(book, first)  # a second one, still owed at the stop
    await first.unconfirmed.aclose()
    book.down = False

    second = gateway_on(book, tmp_path)
    assert second.unconfirmed.resume() == 1  # the second only
    await until_nothing_is_owed(second)

    assert await book.balance(KEY) == Balance(spent=0, held=0)
    assert [record.images for record in await charge_log(book)] == [1, -1, 1, -1]


async def test_a_void_that_failed_with_an_error_that_is_no_outage_is_left_written_down_at_stop(
    tmp_path: Path
) -> None:
    """It was dropped from the voids owed, so the stop took the process's file for one that owes
    nothing and removed it: the charge of a request answered 503 stood."""
    book = SwitchedBook()
    first = gateway_on(book, tmp_path)
    await answered_503_with_the_store_gone(book, first)
    book.broken_voids, book.down = BROKEN, False  # every void fails, and not for an outage
    async with asyncio.timeout(10):
        while book.broken_voids == BROKEN:  # the background task's next try met it
            await asyncio.sleep(0.02)
    await first.unconfirmed.aclose()
    book.broken_voids = 0

    second = gateway_on(book, tmp_path)
    assert second.unconfirmed.resume() == 1
    await until_nothing_is_owed(second)
    assert await book.balance(KEY) == Balance(spent=0, held=0)


def test_a_running_process_keeps_its_file_and_a_killed_ones_is_taken_over(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, time\n"
            "from pathlib import Path\n"
            "from proxy.owed_voids import OwedVoidsJournal\n"
            "from tests.proxy.test_kept_charge import PER_IMAGE_WITHOUT_BUDGET, TIME_BILLED\n"
            "journal = OwedVoidsJournal(Path(sys.argv[1]))\n"
            "journal.owe(TIME_BILLED)\n"
            "journal.owe(PER_IMAGE_WITHOUT_BUDGET)\n"
            "journal.paid(PER_IMAGE_WITHOUT_BUDGET)\n"
            "print('owed', flush=True)\n"
            "time.sleep(600)\n"
        ), str(tmp_path)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "owed\n"
        alive = OwedVoidsJournal(tmp_path).inherit()
        assert alive.owed == [] and alive.files == []  # its lock is held: not a gone process's
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)

    taker = OwedVoidsJournal(tmp_path)
    inherited = taker.inherit()
    assert inherited.owed == [TIME_BILLED]  # read back exactly; the paid one is not owed
    assert OwedVoidsJournal(tmp_path).inherit().owed == []  # locked by the taker meanwhile
    taker.forget(inherited)
    assert list(tmp_path.iterdir()) == []


def left_owing_two(directory: Path) -> Path:
    """The file a process stopped while owing two voids (``TIME_BILLED``, then
    ``PER_IMAGE_WITHOUT_BUDGET``) left in ``directory``."""
    journal = OwedVoidsJournal(directory)
    journal.owe(TIME_BILLED)
    journal.owe(PER_IMAGE_WITHOUT_BUDGET)
    journal.close(still_owed=True)
    (left,) = directory.iterdir()
    return left


def test_a_file_that_cannot_be_removed_is_let_go_for_a_later_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    left = left_owing_two(tmp_path)
    taker = OwedVoidsJournal(tmp_path)
    inherited = taker.inherit()
    unlink = Path.unlink

    def refused(path: Path, missing_ok: bool = False) -> None:
        if path == left:
            raise PermissionError(13, "Permission denied", str(path))
        unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", refused)
    with caplog.at_level(logging.WARNING, logger="proxy.owed_voids"):
        taker.forget(inherited)

    assert any(f"cannot remove {left}" in record.getMessage() for record in caplog.records)
    assert inherited.files == []
    # its lock let go: a later start takes it over (a void made twice is harmless)
    assert OwedVoidsJournal(tmp_path).inherit().owed == [TIME_BILLED, PER_IMAGE_WITHOUT_BUDGET]


def test_a_line_cut_short_by_the_kill_is_skipped_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    left = left_owing_two(tmp_path)
    left.write_bytes(left.read_bytes()[:-40])  # the second line torn mid-write

    with caplog.at_level(logging.ERROR, logger="proxy.owed_voids"):
        assert OwedVoidsJournal(tmp_path).inherit().owed == [TIME_BILLED]
    assert any("is not a void owed" in record.getMessage() for record in caplog.records)


async def test_a_data_directory_that_cannot_be_written_keeps_the_void_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    book = SwitchedBook()
    served = gateway_on(book, not_a_directory)

    with caplog.at_level(logging.WARNING, logger="proxy.owed_voids"):
        await answered_503_with_the_store_gone(book, served)
    assert any("kept in memory only" in record.getMessage() for record in caplog.records)
    book.down = False
    await until_nothing_is_owed(served)
    assert (await book.balance(KEY)).spent == 0


def test_an_owed_line_with_an_amount_that_is_not_a_number_is_skipped_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    left = left_owing_two(tmp_path)
    left.write_bytes(left.read_bytes().replace(b'"0.00405"', b'"four cents"', 1))  # the second line's price

    with caplog.at_level(logging.ERROR, logger="proxy.owed_voids"):
        assert OwedVoidsJournal(tmp_path).inherit().owed == [TIME_BILLED]  # a start is never stopped by it
    assert any("is not a void owed" in record.getMessage() for record in caplog.records)


HEDGE_LOSS = OwedLoss("loss:5f3a", "runflow", Decimal("0.00405"), "2026-12-01")
UNDELIVERED = OwedLoss("undelivered:9c1e", "eachlabs", Decimal("0.012"), "2026-12-02")


def test_losses_owed_are_read_back_exactly_beside_the_voids_and_a_booked_one_is_not_owed(tmp_path: Path) -> None:
    journal = OwedVoidsJournal(tmp_path)
    journal.owe(TIME_BILLED)
    journal.owe_loss(HEDGE_LOSS)
    journal.owe_loss(UNDELIVERED)
    journal.paid(UNDELIVERED)
    journal.close(still_owed=True)

    inherited = OwedVoidsJournal(tmp_path).inherit()
    assert inherited.owed == [TIME_BILLED]
    assert inherited.losses == [HEDGE_LOSS]
    (listed,) = OwedVoidsJournal(tmp_path).owed_here()
    assert listed.losses == [HEDGE_LOSS]


def test_a_loss_line_with_an_amount_that_is_not_a_number_is_skipped_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = OwedVoidsJournal(tmp_path)
    journal.owe_loss(HEDGE_LOSS)
    journal.owe_loss(UNDELIVERED)
    journal.close(still_owed=True)
    (left,) = tmp_path.iterdir()
    left.write_bytes(left.read_bytes().replace(b'"0.012"', b'"twelve cents"'))

    with caplog.at_level(logging.ERROR, logger="proxy.owed_voids"):
        assert OwedVoidsJournal(tmp_path).inherit().losses == [HEDGE_LOSS]
    assert any("nor a loss owed" in record.getMessage() for record in caplog.records)
