"""What one request's money costs in each ledger store: hold + settle (the two ledger writes of a
served request), one after another, in the event loop the gateway would run them in.

    python bench/ledger_stores.py [--requests 5000] [--stores memory,sqlite,redis]

Two cases: ``no limit`` (an API key without a budget, what bench/overhead.py's gateway does) and
``limit`` (a key with a budget: each hold and each settle of an expired hold also sums the
account's live holds). Prints CPU microseconds (``time.process_time``: what the gateway's
process pays, the figure issue 17 is about) per hold and per settle, and wall microseconds per
request, each the median of 5 rounds. Redis is measured when a ``redis-server`` binary is
installed (a throwaway one on loopback, with AOF ``everysec`` as the chart runs it); its CPU
figure is the client's side only.

To compare two checkouts, run this script from each in turn, alternately (the machine drifts):
it measures the ``core`` next to it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
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
ENTRY = b'{"vendor": "runflow", "model": "sdxl-lightning", "usd": 0.00405, "request_id": "0123456789abcdef"}'
CASES = {"no limit": None, "limit": 10**15}
IN_FLIGHT = 32
"""Holds open at once, as in a gateway at concurrency 32."""


@dataclass(frozen=True, slots=True)
class Round:
    hold_cpu_us: float
    settle_cpu_us: float
    wall_us: float


async def one_round(book: LedgerStore, requests: int, label: str, limit: int | None) -> Round:
    """``requests`` holds and settles, ``IN_FLIGHT`` holds then their settles at a time (as a
    gateway serving that many requests at once), CPU timed apart; and the wall time of it all."""
    hold_cpu = settle_cpu = 0.0
    started = time.perf_counter()
    for first in range(0, requests, IN_FLIGHT):
        ids = [f"{label}-{index}" for index in range(first, min(requests, first + IN_FLIGHT))]
        cpu = time.process_time()
        for hold_id in ids:
            await book.hold("k", hold_id, 4050, limit=limit, lease_s=90)
        held = time.process_time()
        for hold_id in ids:
            await book.settle("k", hold_id, 4050, limit=limit, tallies=TALLIES, entry=ENTRY)
        hold_cpu, settle_cpu = hold_cpu + held - cpu, settle_cpu + time.process_time() - held
    wall = time.perf_counter() - started
    return Round(hold_cpu / requests * 1e6, settle_cpu / requests * 1e6, wall / requests * 1e6)


async def measure(name: str, book: LedgerStore, requests: int) -> None:
    for case, limit in CASES.items():
        rounds = [await one_round(book, requests, f"{case}{index}", limit) for index in range(5)]
        hold = statistics.median(r.hold_cpu_us for r in rounds)
        settle = statistics.median(r.settle_cpu_us for r in rounds)
        wall = statistics.median(r.wall_us for r in rounds)
        print(f"{name:<34} {case:<9} CPU hold {hold:6.1f} us  settle {settle:6.1f} us  "
              f"wall {wall:7.1f} us/request")


async def main(requests: int, stores: list[str]) -> None:
    print(f"{requests} requests a round: {IN_FLIGHT} holds, then their {IN_FLIGHT} settles, one call at a time; "
          "medians of 5 rounds")
    if "memory" in stores:
        await measure("memory", MemoryLedgerStore(), requests)
    if "sqlite" in stores:
        with tempfile.TemporaryDirectory() as directory:
            database = SqliteDatabase.in_directory(Path(directory))
            await measure("sqlite (WAL, synchronous=NORMAL)", SqliteLedgerStore(database), requests)
            database.close()
    if "redis" not in stores:
        return
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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--stores", default="memory,sqlite,redis", help="comma-separated: memory, sqlite, redis")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.requests, arguments.stores.split(",")))
