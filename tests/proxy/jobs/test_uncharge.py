"""A job that ended without its images is left uncharged; one whose charge cannot be taken back
(no kept charge: a record from before runs kept theirs) is named for an operator, once per job."""

from __future__ import annotations

import logging

import pytest

from core.state.memory import MemoryStateStore
from proxy.jobs.book import JobBook
from proxy.jobs.record import HeldCredits, JobRecord
from proxy.jobs.uncharge import uncharge
from proxy.metrics import REGISTRY
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to
from tests.proxy.test_gateway import gateway_and_book

RECORD = JobRecord("job_1", "key-1", {"prompt": "a kite"}, "http://gateway.test",
                   HeldCredits("hold-a", 5_000, 1_000_000, "100"))


def charged_without_images() -> float:
    return REGISTRY.get_sample_value("boltgate_jobs_charged_without_images_total") or 0.0


async def test_a_job_charged_without_a_kept_charge_is_counted_and_named_once_however_often_it_is_settled_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Its cancel, its run's end and its next delivery after a restart (another process, another
    job book) each settle the job up: one job to refund, counted once."""
    gateway, ledger_store = gateway_and_book([route_to(ScriptedBackend("runflow"))])
    await ledger_store.settle("key-1", "hold-a", 4_000, limit=None)  # charged, no charge kept
    before = charged_without_images()

    with caplog.at_level(logging.ERROR, logger="proxy.jobs.uncharge"):
        await uncharge(gateway.billing, JobBook(MemoryStateStore(), retention_s=60), RECORD)
        await uncharge(gateway.billing, JobBook(MemoryStateStore(), retention_s=60), RECORD)
        await uncharge(gateway.billing, JobBook(MemoryStateStore(), retention_s=60), RECORD)

    assert charged_without_images() == before + 1
    assert len([r for r in caplog.records if "refund it by hand" in r.getMessage()]) == 1


async def test_another_job_charged_without_a_kept_charge_is_counted_apart() -> None:
    gateway, ledger_store = gateway_and_book([route_to(ScriptedBackend("runflow"))])
    other = JobRecord("job_2", "key-1", {"prompt": "a kite"}, "http://gateway.test",
                      HeldCredits("hold-b", 5_000, 1_000_000, "100"))
    await ledger_store.settle("key-1", "hold-a", 4_000, limit=None)
    await ledger_store.settle("key-1", "hold-b", 4_000, limit=None)
    before = charged_without_images()

    for record in (RECORD, other, RECORD, other):
        await uncharge(gateway.billing, JobBook(MemoryStateStore(), retention_s=60), record)

    assert charged_without_images() == before + 2
