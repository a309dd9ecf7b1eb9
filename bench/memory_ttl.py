"""Does ``make run`` give memory back? RSS of the gateway while it serves URL images that expire.

Starts ``boltgate serve`` as ``make run`` does (no keys: the built-in simulators), with a short
image TTL, sends URL-image requests (half with an ``Idempotency-Key``, whose replays are kept a
day), then waits past the TTL without a single request and reads the process's RSS again.
Prints the figures; the issue's bar is an end RSS within 50 MB of the start.

    python bench/memory_ttl.py --images 10000 --ttl 2
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from listening import start_on_a_free_port

REPO = Path(__file__).resolve().parent.parent


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def start_gateway(ttl: float) -> tuple[subprocess.Popen[bytes], int]:
    env = {**os.environ, "BOLTGATE_IMAGE_TTL_S": str(ttl), "BOLTGATE_LOG_LEVEL": "warning",
           "PYTHONPATH": str(REPO)}
    env = {name: value for name, value in env.items() if not name.endswith("_API_KEY")}
    return start_on_a_free_port(lambda port: [sys.executable, "-m", "proxy.cli", "serve", "--port", str(port)],
                                name="gateway", cwd=REPO, env=env)


def wait_ready(base_url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the gateway did not become ready")


async def send(base_url: str, images: int, concurrency: int) -> int:
    body = orjson.dumps({"prompt": "a lighthouse", "size": "256x256", "response_format": "url"})
    counter = iter(range(images))
    failures = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal failures
        for index in counter:
            headers = {"content-type": "application/json"}
            if index % 2:
                headers["idempotency-key"] = f"bench-{index}"
            response = await client.post(f"{base_url}/v1/images/generations", content=body, headers=headers)
            failures += response.status_code != 200

    async with httpx.AsyncClient(timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--ttl", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    gateway, port = start_gateway(args.ttl)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base_url)
        httpx.post(f"{base_url}/v1/images/generations", json={"prompt": "warm up", "size": "256x256"}, timeout=60)
        start = rss_mb(gateway.pid)
        started = time.monotonic()
        failures = asyncio.run(send(base_url, args.images, args.concurrency))
        seconds = time.monotonic() - started
        after_load = rss_mb(gateway.pid)
        time.sleep(args.ttl + 3)  # past the TTL and a few sweeps, with no request at all
        end = rss_mb(gateway.pid)
    finally:
        gateway.terminate()
        gateway.wait(timeout=30)
    print(f"{args.images} URL images ({failures} failed) in {seconds:.1f} s at concurrency {args.concurrency}, "
          f"image TTL {args.ttl:g} s")
    print(f"RSS: start {start:.0f} MB, after the load {after_load:.0f} MB, {args.ttl + 3:g} s later {end:.0f} MB "
          f"(end - start = {end - start:+.0f} MB; the bar is +50 MB)")
    return 0 if end - start <= 50 and failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
