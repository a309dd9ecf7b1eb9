"""What one request's money costs in each ledger store: hold + settle (the two ledger writes of a
served request), one after another, in the event loop the gateway would run them in.

    python bench/ledger_stores.py [--requests 5000]

Redis is measured when a ``redis-server`` binary is installed (a throwaway one on loopback, with
AOF ``everysec`` as the chart runs it). Prints microseconds per request (median of 5 rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.state.ledger_store import LedgerStore, Tally
from core.state.memory_ledger import MemoryLedgerStore
from core.state.redis import RedisStateStore
from core.state.redis_ledger import RedisLedgerStore
from core.state.sqlite_database import SqliteDatabase
from core.state.sqlite_ledger import SqliteLedgerStore
from tests.redis_server import RedisServer, RedisServerMissing

TALLIES = [Tally("key:k:day_usd", "2026-11-03", 4050), Tally("key:k:day_images", "2026-11-03", 1),
           Tally("key:k:vendor_usd", "runflow", 4050), Tally("key:k:vendor_images", "runflow", 1)]


async def one_round(book: LedgerStore, requests: int, round_index: int) -> float:
    started = time.perf_counter()
    for index in range(requests):
        hold_id = f"r{round_index}-{index}"
        await book.hold("k", hold_id, 4050, limit=10**12, lease_s=90)
        await book.settle("k", hold_id, 4050, limit=10**12, tallies=TALLIES, entry=b'{"vendor": "runflow"}')
    return (time.perf_counter() - started) / requests * 1e6


async def measure(name: str, book: LedgerStore, requests: int) -> None:
    rounds = [await one_round(book, requests, index) for index in range(5)]
    print(f"{name:<34} {statistics.median(rounds):8.1f} us/request  (rounds: "
          f"{', '.join(f'{r:.0f}' for r in rounds)})")


async def main(requests: int) -> None:
    print(f"hold + settle, {requests} requests a round, one at a time")
    await measure("memory", MemoryLedgerStore(), requests)
    with tempfile.TemporaryDirectory() as directory:
        database = SqliteDatabase.in_directory(Path(directory))
        await measure("sqlite (WAL, synchronous=NORMAL)", SqliteLedgerStore(database), requests)
        database.close()
    try:
        server = RedisServer(appendonly=True)
        server.start()
    except RedisServerMissing:
        print("redis: no redis-server installed, skipped")
        return
    try:
        state = RedisStateStore.from_url(server.url)
        await measure("redis (loopback, AOF everysec)", RedisLedgerStore(state.client), requests)
        await state.aclose()
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=5000)
    asyncio.run(main(parser.parse_args().requests))
