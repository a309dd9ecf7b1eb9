"""Gateway CPU per request of this checkout against another (e.g. main), in alternating rounds.

On a shared 2-core machine two runs minutes apart differ by 20-40%, so a change is measured
against its baseline in one script: both gateways run at once (each from its own checkout,
each on the SQLite state store in its own directory), pinned to CPU 1, in front of one
zero-latency simulator; the client and the simulator are on CPU 0. Each round loads one gateway
then the other (the order alternates), and the gateway's CPU time (``/proc/PID/stat``) over the
round is divided by the requests it answered.

    git archive main | tar -x -C /tmp/main
    python bench/overhead_ab.py --baseline /tmp/main [--size 256x256] [--concurrency 1] [--rounds 10] \
        [--response-format b64_json|url]

``url`` has the gateway keep each image in its image store and answer its URL (the store, not
only the relay, is then measured); the image is not downloaded.

Prints each round, then the medians and the median of the per-round ratios (this / baseline):
CPU per request, p50 latency and p99 latency (a stall on the event loop shows in p99 alone).
Each round also loads the simulator directly first, so the last lines give what each gateway
adds to the p50 (its p50 less the simulator's own in that round), the issue's measure of
latency, and the ratio of the two: the simulator's own time (8 ms for a large image on this
VM) otherwise dilutes the p50 ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from alternating import alternate, report, warm_up
from listening import start_on_a_free_port
from loadclient import prepare_post
from overhead import HOST, KEY, bodies, direct_request, start_simulator, taskset

HERE = Path(__file__).resolve().parents[1]


def start_gateway(checkout: Path, sim_port: int, workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """``checkout``'s gateway in front of the simulator, once it listens."""
    config = workdir / "routes.toml"
    config.write_text(
        f'[[routes]]\nvendor = "callmissed"\nkey_env = "BENCH_SIM_KEY"\nmax_attempts = 1\n'
        f'regions = [{{name = "sim", base_url = "http://{HOST}:{sim_port}"}}]\n'
    )
    env = {**os.environ, "BENCH_SIM_KEY": KEY, "BOLTGATE_CONFIG": str(config), "BOLTGATE_LOG_LEVEL": "warning",
           "BOLTGATE_DATA_DIR": str(workdir / "data"), "PYTHONPATH": str(checkout)}
    return start_on_a_free_port(
        lambda port: [*taskset("1"), sys.executable, "-m", "proxy", "serve", "--port", str(port)],
        name=f"gateway of {checkout}", cwd=checkout, env=env)


async def compare(baseline: Path, size: str, concurrency: int, rounds: int, seconds: float,
                  response_format: str = "b64_json") -> None:
    checkouts = {"baseline": baseline.resolve(), "this": HERE}
    simulator, sim_port = start_simulator(realistic=size != "256x256", cwd=HERE,
                                          env={**os.environ, "PYTHONPATH": str(HERE)})
    gateways: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    with tempfile.TemporaryDirectory() as base_dir, tempfile.TemporaryDirectory() as this_dir:
        try:
            for (name, path), workdir in zip(checkouts.items(), (base_dir, this_dir), strict=True):
                gateways[name] = start_gateway(path, sim_port, Path(workdir))
            if (os.cpu_count() or 1) > 1:
                os.sched_setaffinity(0, {0})
            _, body = bodies(size)
            if response_format != "b64_json":
                body = orjson.dumps({**orjson.loads(body), "response_format": response_format})
            requests = {name: prepare_post(HOST, port, "/v1/images/generations", body)
                        for name, (_, port) in gateways.items()}
            await warm_up(gateways, requests, concurrency=concurrency, seconds=1.5)
            print(f"{size} at concurrency {concurrency}, {rounds} rounds of {seconds:g} s; "
                  f"load average {os.getloadavg()[0]:.2f}; gateway CPU ms per request")
            direct_body, _ = bodies(size)
            direct = (sim_port, direct_request(sim_port, direct_body))
            measured = await alternate(gateways, requests, concurrency=concurrency, rounds=rounds, seconds=seconds,
                                       direct=direct)
            report(measured, checkouts, "request")
        finally:
            for gateway, _ in gateways.values():
                gateway.terminate()
                gateway.wait(timeout=30)
            simulator.terminate()
            simulator.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True, help="another checkout of boltgate (e.g. main)")
    parser.add_argument("--size", default="256x256", help="256x256 (about 2 KB) or 1024x1024 (about 1.5 MB)")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--response-format", default="b64_json", choices=("b64_json", "url"))
    args = parser.parse_args()
    asyncio.run(compare(args.baseline, args.size, args.concurrency, args.rounds, args.seconds, args.response_format))


if __name__ == "__main__":
    main()
