"""What only the Redis ledger store does: the charge log is a stream, whose ids (``<ms>-<seq>``)
tell apart the charges written in one millisecond, so a page that ends inside one loses none."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from core.state.redis import RedisStateStore
from core.state.redis_ledger import RedisLedgerStore

pytestmark = pytest.mark.redis


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    state = RedisStateStore.from_url(redis_url)
    yield state.client
    await state.aclose()


async def test_pages_ending_inside_one_millisecond_drop_and_repeat_nothing(client: redis.asyncio.Redis) -> None:
    book = RedisLedgerStore(client)
    for sequence in range(12):
        await client.xadd("boltgate:ledger:charges", {"entry": f"{sequence}"}, id=f"1800000000000-{sequence}")

    entries, after = [], None
    while page := await book.charges(0, 5, after=after):
        entries += [charge.entry for charge in page]
        assert {charge.at for charge in page} == {1_800_000_000.0}
        after = page[-1].position

    assert entries == [f"{sequence}".encode() for sequence in range(12)]
