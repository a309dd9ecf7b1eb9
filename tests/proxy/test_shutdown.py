"""The gateway's stop is bounded: tasks are cancelled until they end, and each closer gets a time.

A dependency that hangs (a Redis connection that swallows every cancel, a pool that never closes)
must cost the stop a bounded time, be named in the log, and not keep the other parts from closing.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from proxy import shutdown
from proxy.shutdown import Closer, cancel_and_wait, close_all
from tests.proxy.deaf_task import Deaf, ends_within


class LosesTheFirstCancel:
    """As redis-py's ``wait_for`` on 3.11: the first cancel is dropped, the loop goes on."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancels = 0

    async def run(self) -> None:
        self.started.set()
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                self.cancels += 1
                if self.cancels > 1:
                    raise


@pytest.fixture(autouse=True)
def brief_unwinding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutdown, "UNWIND_S", 0.3)


async def test_a_task_that_loses_its_first_cancel_is_cancelled_again_until_it_ends() -> None:
    loop = LosesTheFirstCancel()
    task = asyncio.create_task(loop.run())
    await loop.started.wait()

    left = await ends_within(cancel_and_wait({task}, within_s=30, what="the loop"))

    assert left == set()
    assert task.cancelled() and loop.cancels == 2


async def test_a_task_that_swallows_every_cancel_is_left_behind_and_named(caplog: pytest.LogCaptureFixture) -> None:
    deaf = Deaf()
    task = asyncio.create_task(deaf.run(), name="reads-the-stream")
    await deaf.started.wait()

    with caplog.at_level(logging.ERROR, logger="proxy.shutdown"):
        left = await ends_within(cancel_and_wait({task}, within_s=0.3, what="the consumer"), deaf)

    assert left == {task} and not task.done()
    assert deaf.cancels >= 2
    assert "the consumer did not end within 0.3 s" in caplog.text
    assert "reads-the-stream" in caplog.text and "deaf_task.py" in caplog.text  # where it waits
    deaf.release()  # the test's own clean-up
    await task


def recording(closed: list[str], name: str) -> Closer:
    async def close() -> None:
        closed.append(name)

    return Closer(name, close)


async def test_parts_close_in_reverse_order_of_opening() -> None:
    closed: list[str] = []

    await close_all([recording(closed, name) for name in ("stores", "routes", "jobs")])

    assert closed == ["jobs", "routes", "stores"]


async def test_a_closer_that_raises_is_logged_and_the_others_still_close(caplog: pytest.LogCaptureFixture) -> None:
    closed: list[str] = []

    async def broken() -> None:
        raise ConnectionResetError("the pool's socket was gone")

    with caplog.at_level(logging.ERROR, logger="proxy.shutdown"):
        await close_all([recording(closed, "stores"), Closer("route acme:r1", broken), recording(closed, "jobs")])

    assert closed == ["jobs", "stores"]
    assert "closing route acme:r1 failed" in caplog.text and "ConnectionResetError" in caplog.text


async def test_a_closer_that_overruns_and_swallows_its_cancel_does_not_hold_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    closed: list[str] = []
    deaf = Deaf()

    with caplog.at_level(logging.ERROR, logger="proxy.shutdown"):
        await ends_within(close_all([recording(closed, "stores"), Closer("webhook sender", deaf.run, within_s=0.2),
                                     recording(closed, "jobs")]), deaf)

    assert closed == ["jobs", "stores"]  # the stores still close, and still last
    assert "closing webhook sender took more than 0.2 s" in caplog.text
    assert "closing webhook sender did not end" in caplog.text
    deaf.release()  # the test's own clean-up
