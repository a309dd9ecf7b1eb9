"""boltgate against Portkey's gateway (Node) on this machine: the same simulator, the same client.

Issue 17's targets were set as ratios to Portkey's gateway measured on another machine ("3x
Portkey's efficiency"); absolute milliseconds differ by 2-3x between the VMs this project runs
on, so the ratio is measured here, side by side: one simulator (CallMissed's OpenAI-style
``/v1/images/generations``) on CPU 0 with the client, both gateways pinned to CPU 1, rounds
alternating direct, boltgate and Portkey, every request timed by the client, each gateway's CPU
from ``/proc/PID/stat`` (Node's helper threads included). Portkey is told the upstream with its
own headers (``x-portkey-provider: openai``, ``x-portkey-custom-host``); boltgate runs its
default configuration (SQLite state, no client keys), as ``bench/overhead.py`` does.

    python bench/competitors.py [--rounds 5] [--seconds 3] [--cases small,large] [--portkey DIR]

Portkey's published npm package (``@portkey-ai/gateway``) is installed into ``DIR`` (default
``var/bench/portkey``) with npm on first use; nothing in the test suite needs it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from listening import start_on_a_free_port
from loadclient import RunResult, prepare_post, run_load
from overhead import CASES, HOST, KEY, bodies, cpu_seconds, direct_request, start_simulator, taskset
from overhead_ab import HERE, start_gateway

PORTKEY_PACKAGE = "@portkey-ai/gateway@1.15.2"
PORTKEY_SERVER = Path("node_modules/@portkey-ai/gateway/build/start-server.js")


def portkey_server(directory: Path) -> Path:
    """Portkey's server script, installed from npm into ``directory`` when it is not there yet."""
    script = directory / PORTKEY_SERVER
    if not script.exists():
        if shutil.which("npm") is None:
            raise SystemExit("npm is needed to install Portkey's gateway (Node.js 18 or newer)")
        directory.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", str(directory), "--no-audit", "--no-fund",
                        PORTKEY_PACKAGE], check=True, stdout=subprocess.DEVNULL)
    return script


def start_portkey(script: Path) -> tuple[subprocess.Popen[bytes], int]:
    return start_on_a_free_port(lambda port: [*taskset("1"), "node", str(script), f"--port={port}", "--headless"],
                                name="Portkey gateway")


async def bench_case(label: str, size: str, realistic: bool, script: Path, rounds: int, seconds: float) -> None:
    simulator, sim_port = start_simulator(realistic=realistic, cwd=HERE, env={**os.environ, "PYTHONPATH": str(HERE)})
    started = [simulator]
    with tempfile.TemporaryDirectory() as workdir:
        try:
            boltgate, boltgate_port = start_gateway(HERE, sim_port, Path(workdir))
            started.append(boltgate)
            portkey, portkey_port = start_portkey(script)
            started.append(portkey)
            direct_body, boltgate_body = bodies(size)
            requests = {
                "direct": (None, direct_request(sim_port, direct_body)),
                "boltgate": (boltgate, prepare_post(HOST, boltgate_port, "/v1/images/generations", boltgate_body)),
                "portkey": (portkey, prepare_post(HOST, portkey_port, "/v1/images/generations", direct_body, {
                    "Authorization": f"Bearer {KEY}", "x-portkey-provider": "openai",
                    "x-portkey-custom-host": f"http://{HOST}:{sim_port}/v1"})),
            }
            ports = {"direct": sim_port, "boltgate": boltgate_port, "portkey": portkey_port}
            for name, (_, request) in requests.items():
                await run_load(HOST, ports[name], request, concurrency=32, seconds=1.5)  # warm up
            for concurrency in (1, 32):
                runs: dict[str, list[RunResult]] = {name: [] for name in requests}
                cpu: dict[str, list[float]] = {name: [] for name in requests if name != "direct"}
                for index in range(rounds):
                    order = list(requests) if index % 2 == 0 else ["direct", "portkey", "boltgate"]
                    for name in order:
                        process, request = requests[name]
                        before = cpu_seconds(process.pid) if process is not None else 0.0
                        run = await run_load(HOST, ports[name], request, concurrency=concurrency, seconds=seconds)
                        if run.errors:
                            raise RuntimeError(f"{name}: {run.errors} non-200 answers")
                        runs[name].append(run)
                        if process is not None:
                            cpu[name].append((cpu_seconds(process.pid) - before) / max(1, len(run.latencies)))
                report(label, concurrency, runs, cpu)
        finally:
            for process in reversed(started):
                process.terminate()
                process.wait(timeout=30)


def report(label: str, concurrency: int, runs: dict[str, list[RunResult]], cpu: dict[str, list[float]]) -> None:
    direct = runs["direct"]
    for name, results in runs.items():
        p50 = statistics.median(r.percentile(0.5) for r in results)
        line = (f"{label:<20}{concurrency:>5}{name:>10}{statistics.median(r.rps for r in results):>9.0f}"
                f"{p50 * 1000:>9.2f}")
        if name in cpu:
            added = statistics.median(g.percentile(0.5) - d.percentile(0.5)
                                      for d, g in zip(direct, results, strict=True))
            line += f"{added * 1000:>11.2f}{statistics.median(cpu[name]) * 1000:>15.3f}"
        print(line)
    ratios = [p / b for b, p in zip(cpu["boltgate"], cpu["portkey"], strict=True)]
    print(f"{'':<25}Portkey's CPU per request / boltgate's, median of rounds: {statistics.median(ratios):.2f}x")


async def bench(cases: list[str], rounds: int, seconds: float, portkey_dir: Path) -> None:
    script = portkey_server(portkey_dir)
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})
    print(f"pinning: client+simulator on CPU 0, each gateway on CPU 1; {rounds} alternating rounds of "
          f"{seconds:g} s per cell; medians of rounds; load average {os.getloadavg()[0]:.2f}\n")
    print(f"{'case':<20}{'conc':>5}{'path':>10}{'req/s':>9}{'p50 ms':>9}{'added p50':>11}{'gw CPU ms/req':>15}")
    for name in cases:
        label, size, realistic = CASES[name]
        await bench_case(label, size, realistic, script, rounds, seconds)
    print(f"\nload average {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--cases", default="small,large", help="comma-separated: small, large")
    parser.add_argument("--portkey", type=Path, default=HERE / "var" / "bench" / "portkey",
                        help="where Portkey's npm package is (installed there when missing)")
    args = parser.parse_args()
    asyncio.run(bench(args.cases.split(","), args.rounds, args.seconds, args.portkey))


if __name__ == "__main__":
    main()
