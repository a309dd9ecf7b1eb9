"""How long the event loop stalls on the SQLite ledger's writes: checkpoints inside a commit on the
loop (SQLite's ``wal_autocheckpoint=1000``, as before) against the checkpointer's thread.

    python bench/wal_checkpoint_stalls.py [--rounds 6] [--seconds 3]

A served request's two ledger writes (hold, then settle) run ``IN_FLIGHT`` at a time on one event
loop, in alternating rounds of each mode (the machine drifts), each on a fresh file; a ticker
task measures how late the loop runs it (the stall every request in flight shares). Prints per
round the requests per second, the p50 / p99 / max of a hold + settle, and the longest lateness,
then the medians per mode. Without the gateway's HTTP work around them, the writes come faster
than a gateway asks for them: the figures are the store's alone.
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

from core.state.ledger_store import Tally
from core.state.sqlite_database import SqliteDatabase
from core.state.sqlite_ledger import SqliteLedgerStore

IN_FLIGHT = 32
TALLIES = [Tally("key:k:day_usd", "2026-01-01", 4050), Tally("key:k:vendor_usd", "runflow", 4050)]
ENTRY = b'{"vendor": "runflow", "model": "sdxl-lightning", "usd": 0.00405, "request_id": "0123456789abcdef"}'
MODES = ("on the loop", "on a thread")


def open_database(directory: Path, mode: str) -> SqliteDatabase:
    database = SqliteDatabase.in_directory(directory)
    if mode == "on the loop":  # as before: the loop's connection checkpoints past 1000 pages, no thread
        database.checkpointer.stop()
        database.connection.execute("PRAGMA wal_autocheckpoint=1000")
    return database


async def one_round(mode: str, seconds: float) -> tuple[float, float, float, float, float]:
    """Requests per second, p50, p99 and max ms of a request's writes, and the loop's longest lateness in ms."""
    with tempfile.TemporaryDirectory() as directory:
        database = open_database(Path(directory), mode)
        book = SqliteLedgerStore(database)
        latencies: list[float] = []
        worst_lateness = 0.0
        ends = time.perf_counter() + seconds

        async def ticker() -> None:
            nonlocal worst_lateness
            while time.perf_counter() < ends:
                asked = time.perf_counter()
                await asyncio.sleep(0.001)
                worst_lateness = max(worst_lateness, time.perf_counter() - asked - 0.001)

        async def client(number: int) -> None:
            index = 0
            while time.perf_counter() < ends:
                hold_id, index = f"{number}-{index}", index + 1
                started = time.perf_counter()
                await book.hold("k", hold_id, 4050, limit=None, lease_s=90)
                await asyncio.sleep(0)  # the vendor call, between the two writes
                await book.settle("k", hold_id, 4050, limit=None, tallies=TALLIES, entry=ENTRY)
                latencies.append(time.perf_counter() - started)
                await asyncio.sleep(0)

        await asyncio.gather(ticker(), *(client(number) for number in range(IN_FLIGHT)))
        database.close()
    ordered = sorted(latencies)
    return (len(ordered) / seconds, ordered[len(ordered) // 2] * 1000, ordered[int(0.99 * len(ordered))] * 1000,
            ordered[-1] * 1000, worst_lateness * 1000)


async def main(rounds: int, seconds: float) -> None:
    figures: dict[str, list[tuple[float, float, float, float, float]]] = {mode: [] for mode in MODES}
    print(f"{IN_FLIGHT} requests in flight, {rounds} rounds of {seconds:g} s per mode, alternating")
    print(f"{'round':>5} {'checkpoints':<12}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}{'loop late ms':>14}")
    for index in range(rounds):
        for mode in MODES if index % 2 == 0 else MODES[::-1]:
            figures[mode].append(await one_round(mode, seconds))
            print(f"{index + 1:>5} {mode:<12}" + "".join(f"{value:>8.2f}" for value in figures[mode][-1][:4])
                  + f"{figures[mode][-1][4]:>14.2f}")
    for mode in MODES:
        medians = [statistics.median(round_[column] for round_ in figures[mode]) for column in range(5)]
        print(f"median {mode:<12}" + "".join(f"{value:>8.2f}" for value in medians[:4]) + f"{medians[4]:>14.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.seconds))
