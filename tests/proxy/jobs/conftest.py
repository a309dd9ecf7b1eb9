"""Fixtures for the job tests: a real webhook receiver on loopback; the state a job test runs on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.proxy.jobs.receiver import WebhookReceiver
from tests.proxy.jobs.test_jobs_restart import state_settings


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as started:
        yield started


@pytest.fixture(params=["sqlite", "redis"])
def state(request: pytest.FixtureRequest) -> Iterator[dict[str, object]]:
    """The embedded SQLite file or a real Redis, each test run on both (``test_jobs_restart``
    overrides it with its own job settings)."""
    with state_settings(request.param) as settings:
        yield settings
