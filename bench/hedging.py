"""What hedging buys and costs: p99 with and without it, and the extra vendor spend.

One route answers in 1 s but hangs 5% of the time for 30 s (aigateway's simulator, a 29 s
latency fault on 5% of its requests); a second route answers in 1.2 s (imageapi.org's
simulator). The gateway runs in its own process with hedging off; every other run sends
``x-boltgate-hedge: on``, so the two modes alternate in one script on one gateway (per
BENCHMARKING.md) and the medians of the rounds are compared. Every request is timed by the
client. Spend comes from the gateway's own counters: what clients were charged upstream for
(``boltgate_upstream_cost_usd_total``) plus what hedges cost as losses
(``boltgate_hedge_cost_usd_total``: each cancelled loser, at its estimated price since neither
simulated vendor publishes a cancel).

The hedge threshold is fixed (``--after``, 1.5 s): with exactly 5% of requests hanging, the
route's p95 (the default threshold) sits on the hang itself.

    python bench/hedging.py [--rounds 2] [--requests 200] [--concurrency 20] [--after 1.5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from listening import start_on_a_free_port
from overhead import HOST

KEY = "bench-key"
FAST_S, HANG_S, SECOND_S, HANG_SHARE = 1.0, 30.0, 1.2, 0.05
BODY = {"model": "sdxl-lightning", "prompt": "a lighthouse", "size": "256x256", "response_format": "b64_json"}


@dataclass
class Mode:
    name: str
    headers: dict[str, str]


MODES = (Mode("without hedging", {}), Mode("with hedging", {"x-boltgate-hedge": "on"}))


def start_simulator(vendor: str, latency: float, *extra: str) -> tuple[subprocess.Popen[bytes], int]:
    return start_on_a_free_port(
        lambda port: [sys.executable, "-m", "backends.simulators", "--vendor", vendor, "--port-base", str(port),
                      "--api-key", KEY, "--latency", str(latency), *extra], name=f"{vendor} simulator")


def start_gateway(workdir: Path, first: int, second: int, after: float) -> tuple[subprocess.Popen[bytes], int]:
    config = workdir / "routes.toml"
    config.write_text(
        "deadline_s = 60\n"
        f"[hedging]\nafter_s = {after}\n"
        "[probes]\nenabled = false\n"
        "[[routes]]\nvendor = \"aigateway\"\nkey_env = \"BENCH_SIM_KEY\"\npriority = 1\nmax_attempts = 1\n"
        "timeout_s = 45\noptions = { response_format = \"b64_json\" }\n"
        f"regions = [{{name = \"sim\", base_url = \"http://{HOST}:{first}\"}}]\n"
        "[[routes]]\nvendor = \"imageapi\"\nkey_env = \"BENCH_SIM_KEY\"\npriority = 2\nmax_attempts = 1\n"
        f"regions = [{{name = \"sim\", base_url = \"http://{HOST}:{second}\"}}]\n"
    )
    env = {**os.environ, "BENCH_SIM_KEY": KEY, "BOLTGATE_CONFIG": str(config), "BOLTGATE_LOG_LEVEL": "warning",
           "BOLTGATE_DATA_DIR": str(workdir / "data")}  # its ledger stays in the throwaway directory
    return start_on_a_free_port(lambda port: [sys.executable, "-m", "proxy", "serve", "--port", str(port)],
                                name="gateway", env=env)


def counter_total(metrics: str, name: str) -> float:
    return sum(float(value) for value in re.findall(rf"^{name}{{[^}}]*}} (\S+)$", metrics, re.MULTILINE))


@dataclass
class RunResult:
    seconds: list[float]
    errors: int
    hedged: int
    spend_usd: float

    def percentile(self, q: float) -> float:
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_mode(client: httpx.AsyncClient, gateway: str, first: str, mode: Mode, requests: int,
                   concurrency: int, rng: random.Random, hang_share: float = HANG_SHARE) -> RunResult:
    hangs = set(rng.sample(range(requests), round(requests * hang_share)))
    queue = list(range(requests))
    seconds: list[float] = []
    errors = hedged = 0
    before = (await client.get(f"{gateway}/metrics")).text

    async def worker() -> None:
        nonlocal errors, hedged
        while queue:
            index = queue.pop()
            if index in hangs:  # the next request the first route receives hangs
                await client.post(f"{first}/_sim/faults", json={"kind": "latency", "seconds": HANG_S - FAST_S})
            started = time.monotonic()
            answer = await client.post(f"{gateway}/v1/images/generations", json=BODY, headers=mode.headers)
            seconds.append(time.monotonic() - started)
            errors += answer.status_code != 200
            hedged += "x-boltgate-hedged-to" in answer.headers

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    after = (await client.get(f"{gateway}/metrics")).text
    spend = sum(counter_total(after, name) - counter_total(before, name)
                for name in ("boltgate_upstream_cost_usd_total", "boltgate_hedge_cost_usd_total"))
    return RunResult(seconds, errors, hedged, spend)


async def bench(rounds: int, requests: int, concurrency: int, after: float) -> None:
    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as workdir:
        try:
            first_sim, first_port = start_simulator("aigateway", FAST_S)
            processes.append(first_sim)
            second_sim, second_port = start_simulator("imageapi", SECOND_S, "--response-shape", "data_b64")
            processes.append(second_sim)
            gateway_process, gateway_port = start_gateway(Path(workdir), first_port, second_port, after)
            processes.append(gateway_process)
            gateway, first = f"http://{HOST}:{gateway_port}", f"http://{HOST}:{first_port}"
            limits = httpx.Limits(max_connections=concurrency * 2 + 4)
            async with httpx.AsyncClient(timeout=120, limits=limits) as client:
                await run_mode(client, gateway, first, MODES[0], concurrency, concurrency, random.Random(0),
                               hang_share=0.0)  # warm the pools
                results: dict[str, list[RunResult]] = {mode.name: [] for mode in MODES}
                rng = random.Random(42)
                for _ in range(rounds):
                    for mode in MODES:
                        results[mode.name].append(
                            await run_mode(client, gateway, first, mode, requests, concurrency, rng))
            report(results, rounds, requests, concurrency, after)
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=10)


def report(results: dict[str, list[RunResult]], rounds: int, requests: int, concurrency: int, after: float) -> None:
    print(f"first route {FAST_S:.1f} s, {HANG_SHARE:.0%} of its requests {HANG_S:.0f} s; second route "
          f"{SECOND_S:.1f} s; hedge after {after:.1f} s; {rounds} alternating rounds of {requests} requests at "
          f"concurrency {concurrency}; medians of rounds\n")
    print(f"{'mode':<18}{'p50 s':>8}{'p95 s':>8}{'p99 s':>8}{'max s':>8}{'hedged':>8}{'errors':>8}"
          f"{'USD/req':>11}")
    base = None
    for name, runs in results.items():
        def med(values: list[float]) -> float:
            return statistics.median(values)

        spend = med([run.spend_usd / len(run.seconds) for run in runs])
        base = spend if base is None else base
        extra = f"  (+{(spend / base - 1):.1%} spend)" if spend != base else ""
        print(f"{name:<18}{med([r.percentile(0.5) for r in runs]):>8.2f}{med([r.percentile(0.95) for r in runs]):>8.2f}"
              f"{med([r.percentile(0.99) for r in runs]):>8.2f}{med([max(r.seconds) for r in runs]):>8.2f}"
              f"{med([r.hedged for r in runs]):>8.0f}{sum(r.errors for r in runs):>8}{spend:>11.6f}{extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--after", type=float, default=1.5, help="hedge threshold, seconds")
    args = parser.parse_args()
    asyncio.run(bench(args.rounds, args.requests, args.concurrency, args.after))


if __name__ == "__main__":
    main()
