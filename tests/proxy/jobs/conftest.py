"""Fixtures for the job tests: a real webhook receiver on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.proxy.jobs.receiver import WebhookReceiver


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as started:
        yield started
