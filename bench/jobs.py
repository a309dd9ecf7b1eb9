"""Async jobs on the built-in vendor simulators: how long a submit takes (the 202), and how long a
batch takes to finish, per state backend (the in-process queue on SQLite; Redis Streams).

    python bench/jobs.py [--jobs 200] [--concurrency 8]

The app is served in process (Litestar's test client, no sockets on the client side); the
simulators answer on loopback with their default latency. Redis is measured when a
``redis-server`` binary is installed (a throwaway one). Prints milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from litestar.testing import AsyncTestClient

from proxy.api.app import create_app
from proxy.settings import Settings
from tests.redis_server import RedisServer, RedisServerMissing

BODY = {"prompt": "a lighthouse at dusk", "size": "256x256"}


async def measure(settings: Settings, jobs: int) -> dict[str, float]:
    async with AsyncTestClient(app=create_app(settings)) as client:
        submits: list[float] = []
        ids: list[str] = []
        started = time.perf_counter()
        for _ in range(jobs):
            before = time.perf_counter()
            answer = await client.post("/v1/images/jobs", json=BODY)
            submits.append((time.perf_counter() - before) * 1000)
            assert answer.status_code == 202, answer.text
            ids.append(answer.json()["id"])
        pending = set(ids)
        statuses: dict[str, int] = {}
        while pending:
            for job_id in list(pending):
                job: dict[str, Any] = (await client.get(f"/v1/images/jobs/{job_id}")).json()
                if job["status"] not in ("queued", "running"):
                    pending.discard(job_id)
                    statuses[job["status"]] = statuses.get(job["status"], 0) + 1
            await asyncio.sleep(0.05)
        total = (time.perf_counter() - started) * 1000
    assert statuses == {"succeeded": jobs}, statuses
    ordered = sorted(submits)
    return {"submit_p50": statistics.median(ordered), "submit_p95": ordered[int(len(ordered) * 0.95) - 1],
            "all_done": total}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    jobs = {"concurrency": args.concurrency}
    with tempfile.TemporaryDirectory() as data:
        backends: list[tuple[str, dict[str, Any]]] = [("sqlite", {"state_backend": "sqlite", "data_dir": data})]
        try:
            redis = RedisServer()
            backends.append(("redis", {"state_backend": "redis", "redis_url": redis.start()}))
        except RedisServerMissing:
            redis = None
        try:
            for name, state in backends:
                figures = asyncio.run(measure(Settings(simulators="on", jobs=jobs, **state), args.jobs))
                print(f"{name:>6}: {args.jobs} jobs, concurrency {args.concurrency}: submit p50 "
                      f"{figures['submit_p50']:.2f} ms, p95 {figures['submit_p95']:.2f} ms; "
                      f"all done in {figures['all_done']:.0f} ms")
        finally:
            if redis is not None:
                redis.stop()


if __name__ == "__main__":
    main()
