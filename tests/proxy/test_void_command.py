"""``boltgate voids``: a void no gateway will make (its data directory gone with its pod, or never
started on again) is made by hand, from the gateway's own logs in either format or from the
directory, exactly once, and a store that does not answer leaves it owed, never dropped.

Each test starts from the real fault: a gateway on the embedded SQLite store whose settle landed
with its answer lost, the store then unreachable until the gateway stopped (a 503 to the client,
the charge standing, the void written down and logged as still owed).
"""

from __future__ import annotations

import asyncio
import fcntl
import io
import logging
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.errors import JobFailed, StateUnavailable
from core.logs import HumanFormatter, JsonFormatter
from core.state.ledger_store import Balance, Voided
from pricing.charge_log import ChargeRecord
from proxy.billing import Billing, PendingCharge
from proxy.cli import main
from proxy.owed_losses import OwedLoss
from proxy.owed_voids import OWED_VOIDS_DIRECTORY, OwedVoidsJournal
from proxy.settings import Settings
from proxy.void_command import journal_lines, owed_from_logs
from proxy.wiring import assemble_gateway, build_stores
from tests.free_port import free_port
from tests.proxy.routing.scripted_backend import NO_BACKOFF, ScriptedBackend, route_to
from tests.proxy.test_unconfirmed_charges import DEADLINE_S, KEY, REQUEST, serve


@dataclass
class Owing:
    """A stopped gateway's data directory, and the records it logged while it owed a void."""

    data_dir: Path
    records: list[logging.LogRecord]

    @property
    def journal(self) -> Path:
        return self.data_dir / OWED_VOIDS_DIRECTORY

    def log_file(self, formatter: logging.Formatter) -> Path:
        """The gateway's log as an operator collected it: every record, in one format."""
        path = self.data_dir.parent / "gateway.log"
        path.write_text("".join(formatter.format(record) + "\n" for record in self.records))
        return path


def settings_on(data_dir: Path) -> Settings:
    return Settings(simulators="off", retry=NO_BACKOFF, deadline_s=DEADLINE_S, api_keys={},
                    require_api_key=False, state_backend="sqlite", data_dir=data_dir)


async def _answer_503_then_stop_owing(data_dir: Path) -> None:
    settings = settings_on(data_dir)
    stores = build_stores(settings)
    gateway = assemble_gateway(settings, stores, [route_to(ScriptedBackend("runflow"))])
    book: Any = stores.book
    settle = book.settle

    async def settle_with_its_answer_lost(*args: Any, **kwargs: Any) -> Any:
        await settle(*args, **kwargs)
        raise StateUnavailable("The state store (test) did not answer in time")

    async def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise StateUnavailable("The state store (test) is down")

    book.settle, book.void = settle_with_its_answer_lost, unreachable
    with pytest.raises(StateUnavailable, match="did not confirm this request's charge"):
        await serve(gateway)
    await gateway.unconfirmed.aclose()  # the store still unreachable: owed at stop
    await stores.aclose()


@pytest.fixture
def owing(tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Iterator[Owing]:
    data_dir = tmp_path / "data"
    with caplog.at_level(logging.INFO):
        asyncio.run(_answer_503_then_stop_owing(data_dir))
    records = list(caplog.records)
    assert any(record.levelno == logging.ERROR and "stopping with a void still owed" in record.getMessage()
               for record in records)
    monkeypatch.setenv("BOLTGATE_STATE_BACKEND", "sqlite")
    monkeypatch.setenv("BOLTGATE_DATA_DIR", str(data_dir))
    monkeypatch.delenv("BOLTGATE_CONFIG", raising=False)
    yield Owing(data_dir, records)


def money(data_dir: Path) -> tuple[Balance, list[ChargeRecord], dict[str, int]]:
    """The key's balance, the charge log and the gateway's losses in the store, as they are now."""
    async def read() -> tuple[Balance, list[ChargeRecord], dict[str, int]]:
        stores = build_stores(settings_on(data_dir))
        try:
            book = stores.book
            charges = [ChargeRecord.from_entry(logged.entry, logged.at) for logged in await book.charges(since=0)]
            return await book.balance(KEY), charges, await book.table("losses:vendor_attempts")
        finally:
            await stores.aclose()
    return asyncio.run(read())


def assert_voided_once(data_dir: Path) -> None:
    balance, charges, losses = money(data_dir)
    assert balance == Balance(spent=0, held=0)
    charge, refund = charges
    assert refund.request_id == charge.request_id and refund.client_usd == -charge.client_usd
    assert losses == {"runflow": 1}  # the vendor's cost, the gateway's loss once


@pytest.mark.parametrize("formatter", [HumanFormatter(), JsonFormatter()], ids=["human", "json"])
def test_a_void_whose_data_directory_is_gone_is_made_from_the_gateways_logs(
    owing: Owing, formatter: logging.Formatter, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert money(owing.data_dir)[0].spent > 0  # the charge a 503 must not leave standing
    log = owing.log_file(formatter)
    shutil.rmtree(owing.journal)  # the pod deleted with its emptyDir: only the logs are left

    assert main(["voids", "make", str(log)]) == 0
    out = capsys.readouterr().out
    assert ": refunded" in out and out.endswith("1 voids made, 0 not made\n")
    assert_voided_once(owing.data_dir)

    with log.open("rb") as piped:  # fed again, through stdin: nothing changes, nothing booked twice
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(piped))
        assert main(["voids", "make", "-"]) == 0
    assert ": unchanged" in capsys.readouterr().out
    assert_voided_once(owing.data_dir)


def test_the_voids_of_a_gone_process_are_listed_then_made_from_the_data_directory(
    owing: Owing, capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["voids", "list"]) == 0
    listed = capsys.readouterr().out
    assert "a gone process's" in listed and listed.endswith(f"1 voids owed under {owing.data_dir}\n")

    assert main(["voids", "make"]) == 0
    assert ": refunded" in capsys.readouterr().out
    assert_voided_once(owing.data_dir)
    assert list(owing.journal.iterdir()) == []  # all it owed is made: the file is removed

    assert main(["voids", "list"]) == 0
    assert capsys.readouterr().out == f"0 voids owed under {owing.data_dir}\n"


def test_a_running_processs_file_is_listed_as_running_and_left_to_it(
    owing: Owing, capsys: pytest.CaptureFixture[str],
) -> None:
    (journal,) = owing.journal.iterdir()
    with journal.open("rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as the process that owns it holds it while it runs
        assert main(["voids", "list"]) == 0
        assert "a running process's" in capsys.readouterr().out
        assert main(["voids", "make"]) == 0
        assert capsys.readouterr().out == "no void owed found\n"
    assert money(owing.data_dir)[0].spent > 0
    assert journal.exists()


def test_a_store_that_does_not_answer_leaves_every_void_owed(
    owing: Owing, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("BOLTGATE_STATE_BACKEND", "redis")
    monkeypatch.setenv("BOLTGATE_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # nothing listens
    monkeypatch.setenv("BOLTGATE_STATE_TIMEOUT_S", "0.5")
    (journal,) = owing.journal.iterdir()
    log = owing.log_file(HumanFormatter())

    assert main(["voids", "make"]) == 1
    assert "NOT MADE" in capsys.readouterr().out
    assert main(["voids", "make", str(log)]) == 1
    assert capsys.readouterr().out.endswith("0 voids made, 1 not made\n")
    assert journal.exists()  # still owed, for a start or another try

    monkeypatch.setenv("BOLTGATE_STATE_BACKEND", "sqlite")
    assert main(["voids", "make"]) == 0
    assert_voided_once(owing.data_dir)


def test_the_memory_store_has_no_voids_to_make_from_outside(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("BOLTGATE_STATE_BACKEND", "memory")
    assert main(["voids", "make", "-"]) == 1
    assert "state_backend=memory" in capsys.readouterr().err


def test_only_the_owed_void_of_a_log_line_is_read_and_the_rest_passed_over(
    owing: Owing, caplog: pytest.LogCaptureFixture,
) -> None:
    human = owing.log_file(HumanFormatter()).read_bytes().splitlines()
    found = journal_lines([b"", b"not a log line", b'{"level": "INFO", "message": "served"}', b"{torn", *human])
    assert found and found[0].startswith(b'{"owe":')  # the error at stop (and the warning, if it was logged first)
    assert all(line == found[0] for line in found)
    assert len(owed_from_logs(human, "gateway.log").voids) == 1

    torn = [line[:-40] for line in human if b"owed_void=" in line]
    with caplog.at_level(logging.ERROR):
        assert owed_from_logs(torn, "gateway.log").voids == []
    assert "gateway.log line 1 is not a void owed" in caplog.text


def test_a_void_that_fails_for_another_reason_is_reported_and_left_owed(
    owing: Owing, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    async def broken(self: Billing, pending: PendingCharge) -> Voided:
        raise RuntimeError("a bug")

    monkeypatch.setattr(Billing, "void", broken)
    assert main(["voids", "make"]) == 1
    assert "NOT MADE: RuntimeError: a bug" in capsys.readouterr().out
    assert len(list(owing.journal.iterdir())) == 1  # still owed, for a start or another try


def test_the_losses_a_gone_process_owed_are_listed_then_booked_with_its_voids_once(
    owing: Owing, capsys: pytest.CaptureFixture[str],
) -> None:
    left = OwedVoidsJournal(owing.journal)  # another gone process's file, owing a loss the store did not book
    left.owe_loss(OwedLoss("loss:hedge-7", "runflow", Decimal("0.0025"), "2026-12-01"))
    left.close(still_owed=True)

    assert main(["voids", "list"]) == 0
    listed = capsys.readouterr().out
    assert "loss loss:hedge-7 (0.0025 USD to runflow on 2026-12-01): a gone process's" in listed
    assert listed.endswith(f"1 voids owed under {owing.data_dir}, 1 losses\n")

    assert main(["voids", "make"]) == 0
    made = capsys.readouterr().out
    assert "loss loss:hedge-7 (0.0025 USD to runflow on 2026-12-01): booked\n" in made
    assert made.endswith("1 voids made, 0 not made; 1 losses booked, 0 not booked\n")
    assert list(owing.journal.iterdir()) == []
    assert money(owing.data_dir)[2] == {"runflow": 2}  # the void's undelivered charge, and this one
    assert main(["voids", "make"]) == 0
    assert capsys.readouterr().out == "no void owed found\n"


async def _lose_a_loss_then_stop_owing(data_dir: Path) -> None:
    """A gateway whose booking of a billed failure the store did not answer until it stopped."""
    settings = settings_on(data_dir)
    stores = build_stores(settings)
    gateway = assemble_gateway(settings, stores, [route_to(ScriptedBackend("runflow"))])
    book: Any = stores.book

    async def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise StateUnavailable("The state store (test) is down")

    book.count = unreachable
    failed = JobFailed("runflow: the job ran and failed", billed=True, vendor_cost_usd=Decimal("0.0025"))
    await gateway.billing.record_loss(gateway.router.routes[0], REQUEST, failed)
    await gateway.unconfirmed.aclose()  # the store still unreachable: owed at stop
    await stores.aclose()


@pytest.mark.parametrize("formatter", [HumanFormatter(), JsonFormatter()], ids=["human", "json"])
def test_a_loss_whose_data_directory_is_gone_is_booked_from_the_gateways_logs_once(
    tmp_path: Path, formatter: logging.Formatter, caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    owing = Owing(tmp_path / "data", [])
    with caplog.at_level(logging.INFO):
        asyncio.run(_lose_a_loss_then_stop_owing(owing.data_dir))
    owing.records.extend(caplog.records)
    assert any(record.levelno == logging.ERROR and "stopping with a loss not booked" in record.getMessage()
               for record in owing.records)
    monkeypatch.setenv("BOLTGATE_STATE_BACKEND", "sqlite")
    monkeypatch.setenv("BOLTGATE_DATA_DIR", str(owing.data_dir))
    monkeypatch.delenv("BOLTGATE_CONFIG", raising=False)
    log = owing.log_file(formatter)
    shutil.rmtree(owing.journal)  # the pod deleted with its emptyDir: only the logs are left
    assert money(owing.data_dir)[2] == {}

    assert main(["voids", "make", str(log)]) == 0
    out = capsys.readouterr().out
    assert "USD to runflow on" in out and ": booked\n" in out
    assert out.endswith("0 voids made, 0 not made; 1 losses booked, 0 not booked\n")
    assert money(owing.data_dir)[2] == {"runflow": 1}

    assert main(["voids", "make", str(log)]) == 0  # fed again: booked before, nothing twice
    assert ": booked before\n" in capsys.readouterr().out
    assert money(owing.data_dir)[2] == {"runflow": 1}
