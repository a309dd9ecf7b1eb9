"""Gateway CPU per image download (``GET /v1/images/files/NAME``) from the directory image store,
this checkout against another (e.g. main), in alternating rounds.

Both gateways run at once, each from its own checkout with ``image_store = "directory"`` (the
store ``--workers`` use on the embedded default), pinned to CPU 1; the client is on CPU 0. Each
serves one image file of ``--megabytes`` (PNG-headed random bytes, written where its store keeps
images) to keep-alive clients; each round loads one gateway then the other (the order
alternates), and the gateway's CPU time (``/proc/PID/stat``) over the round is divided by the
downloads it answered.

    git archive main | tar -x -C /tmp/main
    python bench/downloads.py --baseline /tmp/main [--megabytes 1.5] [--concurrency 1] [--rounds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from alternating import alternate, report, warm_up
from listening import start_on_a_free_port
from overhead import HOST, taskset

HERE = Path(__file__).resolve().parents[1]
IMAGE_NAME = "benchmarkbenchmarkbench.png"


def start_gateway(checkout: Path, workdir: Path, image: bytes) -> tuple[subprocess.Popen[bytes], int]:
    """``checkout``'s gateway serving ``image`` from its image directory, once it listens."""
    images = workdir / "images"
    images.mkdir(parents=True)
    (images / IMAGE_NAME).write_bytes(image)
    env = {**os.environ, "BOLTGATE_IMAGE_STORE": "directory", "BOLTGATE_IMAGE_DIR": str(images),
           "BOLTGATE_LOG_LEVEL": "warning", "BOLTGATE_DATA_DIR": str(workdir / "data"), "PYTHONPATH": str(checkout)}
    return start_on_a_free_port(
        lambda port: [*taskset("1"), sys.executable, "-m", "proxy", "serve", "--port", str(port)],
        name=f"gateway of {checkout}", cwd=checkout, env=env)


def download_request(port: int) -> bytes:
    return f"GET /v1/images/files/{IMAGE_NAME} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()


async def compare(baseline: Path, megabytes: float, concurrency: int, rounds: int, seconds: float) -> None:
    checkouts = {"baseline": baseline.resolve(), "this": HERE}
    image = b"\x89PNG\r\n\x1a\n" + os.urandom(int(megabytes * 1024 * 1024) - 8)
    gateways: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    with tempfile.TemporaryDirectory() as base_dir, tempfile.TemporaryDirectory() as this_dir:
        try:
            for (name, path), workdir in zip(checkouts.items(), (base_dir, this_dir), strict=True):
                gateways[name] = start_gateway(path, Path(workdir), image)
            if (os.cpu_count() or 1) > 1:
                os.sched_setaffinity(0, {0})
            requests = {name: download_request(port) for name, (_, port) in gateways.items()}
            await warm_up(gateways, requests, concurrency=concurrency, seconds=1.0)
            print(f"{megabytes:g} MB image at concurrency {concurrency}, {rounds} rounds of {seconds:g} s; "
                  f"load average {os.getloadavg()[0]:.2f}; gateway CPU ms per download")
            measured = await alternate(gateways, requests, concurrency=concurrency, rounds=rounds, seconds=seconds)
            report(measured, checkouts, "download")
        finally:
            for gateway, _ in gateways.values():
                gateway.terminate()
                gateway.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True, help="another checkout of boltgate (e.g. main)")
    parser.add_argument("--megabytes", type=float, default=1.5)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    asyncio.run(compare(args.baseline, args.megabytes, args.concurrency, args.rounds, args.seconds))


if __name__ == "__main__":
    main()
