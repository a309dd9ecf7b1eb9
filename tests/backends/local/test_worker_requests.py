"""Each generate call's token, deadline and connection, checked at the worker's door."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from backends.local.worker_requests import check_token, deadline_from, unless_disconnected, worker_token
from core.errors import AuthenticationFailed, ClientDisconnected, InvalidRequest


def test_the_token_comes_from_the_named_variable() -> None:
    assert worker_token("BOLTGATE_WORKER_TOKEN", {"BOLTGATE_WORKER_TOKEN": "s3cret"}) == "s3cret"
    assert worker_token("BOLTGATE_WORKER_TOKEN", {"BOLTGATE_WORKER_TOKEN": ""}) is None
    assert worker_token(None, {"BOLTGATE_WORKER_TOKEN": "s3cret"}) is None


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Bearer wrong", "Basic s3cret", "s3cret"])
def test_a_call_without_the_token_is_refused(authorization: str | None) -> None:
    with pytest.raises(AuthenticationFailed) as refused:
        check_token("s3cret", authorization)
    assert refused.value.status_code == 401


def test_the_token_or_no_token_at_all_passes() -> None:
    check_token("s3cret", "Bearer s3cret")
    check_token("s3cret", "bearer  s3cret")
    check_token(None, None)


def test_the_deadline_header_is_seconds_left() -> None:
    deadline = deadline_from("12.5")
    assert deadline is not None and 12 < deadline.remaining() <= 12.5
    assert deadline_from(None) is None
    for bad in ("soon", "-1", "nan", "1e9"):
        with pytest.raises(InvalidRequest):
            deadline_from(bad)


async def test_a_disconnect_cancels_the_work() -> None:
    disconnected = asyncio.Event()
    cancelled = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await disconnected.wait()
        return {"type": "http.disconnect"}

    async def work() -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "images"

    pending = asyncio.create_task(unless_disconnected(receive, work()))
    await asyncio.sleep(0.01)
    disconnected.set()
    with pytest.raises(ClientDisconnected):
        await pending
    await asyncio.wait_for(cancelled.wait(), 1)


async def test_work_that_finishes_first_is_returned() -> None:
    async def receive() -> dict[str, Any]:
        await asyncio.sleep(30)
        return {"type": "http.disconnect"}

    async def work() -> str:
        return "images"

    assert await unless_disconnected(receive, work()) == "images"
