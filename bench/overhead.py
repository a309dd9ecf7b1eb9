"""How much the gateway adds: a zero-latency simulator driven directly and through boltgate.

Direct and gateway runs alternate (A B A B ...) in one script and the
medians of the rounds are compared; the client and the simulator are pinned to CPU 0, the
gateway to CPU 1; every request is timed by the client itself; the gateway's CPU time comes
from /proc/PID/stat (utime + stime) over each gateway run.

    python bench/overhead.py [--rounds 5] [--seconds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadclient import RunResult, prepare_post, run_load

HOST = "127.0.0.1"
KEY = "bench-key"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def taskset(cpu: str) -> list[str]:
    return ["taskset", "-c", cpu] if (os.cpu_count() or 1) > 1 else []


def start_processes(
    workdir: Path, *, realistic: bool
) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes], int, int]:
    sim_port, gw_port = free_port(), free_port()
    simulator = subprocess.Popen(
        [*taskset("0"), sys.executable, "-m", "backends.simulators", "--vendor", "callmissed",
         "--port-base", str(sim_port), "--api-key", KEY, *(["--realistic-images"] if realistic else [])],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    config = workdir / "routes.toml"
    config.write_text(
        f'[[routes]]\nvendor = "callmissed"\nkey_env = "BENCH_SIM_KEY"\nmax_attempts = 1\n'
        f'regions = [{{name = "sim", base_url = "http://{HOST}:{sim_port}"}}]\n'
    )
    # The default state backend (the SQLite ledger), in the run's own directory.
    env = {**os.environ, "BENCH_SIM_KEY": KEY, "BOLTGATE_CONFIG": str(config), "BOLTGATE_LOG_LEVEL": "warning",
           "BOLTGATE_DATA_DIR": str(workdir / "data")}
    gateway = subprocess.Popen(
        [*taskset("1"), sys.executable, "-m", "proxy", "serve", "--port", str(gw_port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_for_port(sim_port)
    wait_for_port(gw_port)
    return simulator, gateway, sim_port, gw_port


def bodies(size: str) -> tuple[bytes, bytes]:
    common = {"prompt": "a lighthouse at dusk", "n": 1, "size": size, "seed": 7, "steps": 4}
    direct = {**common, "model": "sdxl-lightning", "response_format": "b64_json"}
    through = {**common, "model": "sdxl-lightning", "response_format": "b64_json", "output_format": "png"}
    return orjson.dumps(direct), orjson.dumps(through)


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:7.2f}"


CASES = (("small 256x256 png", "256x256", False), ("1024x1024 png", "1024x1024", True))
if os.environ.get("BENCH_CASES"):
    CASES = tuple(c for c in CASES if c[1] in os.environ["BENCH_CASES"].split(","))
"""The 1024x1024 case renders noisy, SDXL-sized PNGs (about 1.5 MB) so the payload is realistic."""


async def bench(rounds: int, seconds: float) -> None:
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})
    print(f"pinning: client+simulator on CPU 0, gateway on CPU 1; {rounds} alternating rounds "
          f"(direct, gateway) of {seconds:.0f}s per cell; medians of rounds\n")
    print(f"{'case':<20}{'conc':>5}{'path':>9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'added p50':>11}{'gw CPU ms/req':>15}")
    for label, size, realistic in CASES:
        with tempfile.TemporaryDirectory() as workdir:
            simulator, gateway, sim_port, gw_port = start_processes(Path(workdir), realistic=realistic)
            try:
                await bench_case(label, size, rounds, seconds, gateway.pid, sim_port, gw_port)
            finally:
                for process in (gateway, simulator):
                    process.terminate()
                    process.wait(timeout=10)


async def bench_case(label: str, size: str, rounds: int, seconds: float, gateway_pid: int, sim_port: int,
                     gw_port: int) -> None:
    direct_body, gateway_body = bodies(size)
    direct_req = prepare_post(HOST, sim_port, "/v1/images/generations", direct_body,
                              {"Authorization": f"Bearer {KEY}"})
    gateway_req = prepare_post(HOST, gw_port, "/v1/images/generations", gateway_body)
    await run_load(HOST, sim_port, direct_req, concurrency=1, seconds=1.0)  # warm caches and pools
    await run_load(HOST, gw_port, gateway_req, concurrency=32, seconds=1.0)
    for concurrency in (1, 32):
        direct_runs: list[RunResult] = []
        gateway_runs: list[RunResult] = []
        cpu_per_request: list[float] = []
        for _ in range(rounds):
            direct_runs.append(await run_load(HOST, sim_port, direct_req, concurrency=concurrency, seconds=seconds))
            before = cpu_seconds(gateway_pid)
            run = await run_load(HOST, gw_port, gateway_req, concurrency=concurrency, seconds=seconds)
            cpu_per_request.append((cpu_seconds(gateway_pid) - before) / max(1, len(run.latencies)))
            gateway_runs.append(run)
        report(label, concurrency, direct_runs, gateway_runs, cpu_per_request)


def report(label: str, concurrency: int, direct: list[RunResult], gateway: list[RunResult],
           cpu: list[float]) -> None:
    def med(values: list[float]) -> float:
        return statistics.median(values)

    d50 = med([r.percentile(0.5) for r in direct])
    g50 = med([r.percentile(0.5) for r in gateway])
    added = med([g.percentile(0.5) - d.percentile(0.5) for d, g in zip(direct, gateway, strict=True)])
    errors = sum(r.errors for r in gateway) + sum(r.errors for r in direct)
    for path, runs, p50 in (("direct", direct, d50), ("gateway", gateway, g50)):
        extra = f"{fmt_ms(added):>11}{med(cpu) * 1000:>15.3f}" if path == "gateway" else ""
        print(f"{label:<20}{concurrency:>5}{path:>9}{med([r.rps for r in runs]):>9.0f}{fmt_ms(p50):>9}"
              f"{fmt_ms(med([r.percentile(0.99) for r in runs])):>9}{extra}")
    if errors:
        print(f"  ({errors} non-200 answers)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    asyncio.run(bench(args.rounds, args.seconds))


if __name__ == "__main__":
    main()
