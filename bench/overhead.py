"""How much the gateway adds: a zero-latency simulator driven directly and through boltgate.

Direct and gateway runs alternate (A B A B ...) in one script and the
medians of the rounds are compared; the client and the simulator are pinned to CPU 0, the
gateway to CPU 1; every request is timed by the client itself; the gateway's CPU time comes
from /proc/PID/stat (utime + stime) over each gateway run.

Two direct baselines: ``direct`` with the simulator on the client's CPU, as it runs for the
gateway path, and ``direct*`` with the simulator moved to CPU 1 (idle then) for that run, so the
client and the upstream do not share a CPU (as where the mock has a core of its own). On this
2-CPU machine ``direct*`` is the faster of the two (the client and the simulator no longer take
turns on one CPU), so ``added p50*`` (the gateway against it) is the larger, conservative figure.
Both are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from listening import process_tree, start_on_a_free_port
from loadclient import BurstResult, RunResult, prepare_post, run_burst, run_load

HOST = "127.0.0.1"
KEY = "bench-key"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def pin(pid: int, cpus: set[int]) -> None:
    """Move every thread of ``pid`` to ``cpus`` (no-op on one CPU)."""
    if (os.cpu_count() or 1) > 1:
        for tid in os.listdir(f"/proc/{pid}/task"):
            os.sched_setaffinity(int(tid), cpus)


def taskset(cpu: str) -> list[str]:
    return ["taskset", "-c", cpu] if (os.cpu_count() or 1) > 1 else []


def start_processes(
    workdir: Path, *, realistic: bool, latency_s: float = 0.0, workers: int = 1, gateway_cpus: str = "1"
) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes], int, int]:
    simulator, sim_port = start_simulator(latency_s=latency_s, realistic=realistic)
    config = workdir / "routes.toml"
    config.write_text(
        f'[[routes]]\nvendor = "callmissed"\nkey_env = "BENCH_SIM_KEY"\nmax_attempts = 1\n'
        f'regions = [{{name = "sim", base_url = "http://{HOST}:{sim_port}"}}]\n'
    )
    # The default state backend (the SQLite ledger), in the run's own directory.
    env = {**os.environ, "BENCH_SIM_KEY": KEY, "BOLTGATE_CONFIG": str(config), "BOLTGATE_LOG_LEVEL": "warning",
           "BOLTGATE_DATA_DIR": str(workdir / "data")}
    try:
        gateway, gw_port = start_on_a_free_port(
            lambda port: [*taskset(gateway_cpus), sys.executable, "-m", "proxy", "serve", "--port", str(port),
                          "--workers", str(workers)], name="gateway", env=env)
    except BaseException:
        stop(simulator)
        raise
    wait_for_workers(gateway.pid, workers)
    return simulator, gateway, sim_port, gw_port


def start_simulator(*, latency_s: float = 0.0, realistic: bool = False, cpu: str = "0",
                    **popen: Any) -> tuple[subprocess.Popen[bytes], int]:
    """The CallMissed simulator, the upstream every overhead figure is measured against."""
    return start_on_a_free_port(
        lambda port: [*taskset(cpu), sys.executable, "-m", "backends.simulators", "--vendor", "callmissed",
                      "--port-base", str(port), "--api-key", KEY, "--latency", str(latency_s),
                      *(["--realistic-images"] if realistic else [])], name="simulator", **popen)


def stop(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    process.terminate()
    process.wait(timeout=timeout)


def tree_cpu_seconds(pid: int) -> float:
    return sum(cpu_seconds(each) for each in process_tree(pid))


def tree_rss_mb(pid: int) -> float:
    pages = sum(int(Path(f"/proc/{each}/statm").read_text().split()[1]) for each in process_tree(pid))
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def wait_for_workers(pid: int, workers: int, timeout: float = 60.0) -> None:
    """Until every worker has built its app (its CPU use settles), so no round pays for a start."""
    if workers == 1:
        return
    deadline = time.monotonic() + timeout
    while len(process_tree(pid)) < workers + 2 and time.monotonic() < deadline:  # + supervisor, resource tracker
        time.sleep(0.2)
    previous = -1.0
    while time.monotonic() < deadline:
        now = tree_cpu_seconds(pid)
        if now - previous < 0.05:
            return
        previous = now
        time.sleep(1.0)


def bodies(size: str) -> tuple[bytes, bytes]:
    common = {"prompt": "a lighthouse at dusk", "n": 1, "size": size, "seed": 7, "steps": 4}
    direct = {**common, "model": "sdxl-lightning", "response_format": "b64_json"}
    through = {**common, "model": "sdxl-lightning", "response_format": "b64_json", "output_format": "png"}
    return orjson.dumps(direct), orjson.dumps(through)


def direct_request(sim_port: int, body: bytes) -> bytes:
    """``body`` posted straight to the simulator, with its key: the baseline every figure is against."""
    return prepare_post(HOST, sim_port, "/v1/images/generations", body, {"Authorization": f"Bearer {KEY}"})


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:7.2f}"


CASES = {"small": ("small 256x256 png", "256x256", False), "large": ("1024x1024 png", "1024x1024", True)}
"""The 1024x1024 case renders noisy, SDXL-sized PNGs (about 1.5 MB) so the payload is realistic."""
BURST_REQUESTS = 2000
BURST_UPSTREAM_S = 2.0


async def bench(rounds: int, seconds: float, cases: list[str], burst_workers: int = 1) -> None:
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})
    print(f"pinning: client+simulator on CPU 0, gateway on CPU 1; {rounds} alternating rounds "
          f"(direct, gateway) of {seconds:.0f}s per cell; medians of rounds\n")
    latency_cases = [CASES[name] for name in cases if name in CASES]
    if latency_cases:
        await bench_latency(latency_cases, rounds, seconds)
    if "burst" in cases:
        await bench_burst(rounds, burst_workers)
    if "workers" in cases:
        await bench_workers(rounds, seconds)


async def bench_latency(cases: list[tuple[str, str, bool]], rounds: int, seconds: float) -> None:
    print(f"{'case':<20}{'conc':>5}{'path':>9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'added p50':>11}{'added p50*':>12}{'gw CPU ms/req':>15}")
    for label, size, realistic in cases:
        with tempfile.TemporaryDirectory() as workdir:
            simulator, gateway, sim_port, gw_port = start_processes(Path(workdir), realistic=realistic)
            try:
                await bench_case(label, size, rounds, seconds, gateway.pid, sim_port, gw_port, simulator.pid)
            finally:
                for process in (gateway, simulator):
                    process.terminate()
                    process.wait(timeout=10)


async def bench_case(label: str, size: str, rounds: int, seconds: float, gateway_pid: int, sim_port: int,
                     gw_port: int, sim_pid: int) -> None:
    direct_body, gateway_body = bodies(size)
    direct_req = direct_request(sim_port, direct_body)
    gateway_req = prepare_post(HOST, gw_port, "/v1/images/generations", gateway_body)
    await run_load(HOST, sim_port, direct_req, concurrency=1, seconds=1.0)  # warm caches and pools
    await run_load(HOST, gw_port, gateway_req, concurrency=32, seconds=1.0)
    for concurrency in (1, 32):
        direct_runs: list[RunResult] = []
        apart_runs: list[RunResult] = []
        gateway_runs: list[RunResult] = []
        cpu_per_request: list[float] = []
        for _ in range(rounds):
            direct_runs.append(await run_load(HOST, sim_port, direct_req, concurrency=concurrency, seconds=seconds))
            pin(sim_pid, {1})
            apart_runs.append(await run_load(HOST, sim_port, direct_req, concurrency=concurrency, seconds=seconds))
            pin(sim_pid, {0})
            before = cpu_seconds(gateway_pid)
            run = await run_load(HOST, gw_port, gateway_req, concurrency=concurrency, seconds=seconds)
            cpu_per_request.append((cpu_seconds(gateway_pid) - before) / max(1, len(run.latencies)))
            gateway_runs.append(run)
        report(label, concurrency, direct_runs, apart_runs, gateway_runs, cpu_per_request)


def report(label: str, concurrency: int, direct: list[RunResult], apart: list[RunResult],
           gateway: list[RunResult], cpu: list[float]) -> None:
    def med(values: list[float]) -> float:
        return statistics.median(values)

    def added(baseline: list[RunResult]) -> float:
        return med([g.percentile(0.5) - d.percentile(0.5) for d, g in zip(baseline, gateway, strict=True)])

    errors = sum(r.errors for r in (*direct, *apart, *gateway))
    for path, runs in (("direct", direct), ("direct*", apart), ("gateway", gateway)):
        extra = (f"{fmt_ms(added(direct)):>11}{fmt_ms(added(apart)):>12}{med(cpu) * 1000:>15.3f}"
                 if path == "gateway" else "")
        print(f"{label:<20}{concurrency:>5}{path:>9}{med([r.rps for r in runs]):>9.0f}"
              f"{fmt_ms(med([r.percentile(0.5) for r in runs])):>9}"
              f"{fmt_ms(med([r.percentile(0.99) for r in runs])):>9}{extra}")
    if errors:
        print(f"  ({errors} non-200 answers)")


async def bench_burst(rounds: int, workers: int = 1) -> None:
    """2,000 clients at once, each on a new connection, upstream 2 s: wall time direct and through.

    With ``workers`` > 1 the gateway runs ``--workers N`` on every CPU (as deployed with
    ``--workers auto``), sharing them with the client and the simulator; with one, on CPU 1."""
    cpus = all_cpus() if workers > 1 else "1"
    print(f"\nburst: {BURST_REQUESTS} requests on new connections at once, upstream {BURST_UPSTREAM_S:.0f} s "
          f"(256x256); gateway --workers {workers} on CPUs {cpus}; {rounds} alternating rounds")
    print(f"{'path':>9}{'wall s':>9}{'p50 s':>8}{'p99 s':>8}{'errors':>8}{'gw RSS +MB':>12}")
    direct_body, gateway_body = bodies("256x256")
    with tempfile.TemporaryDirectory() as workdir:
        simulator, gateway, sim_port, gw_port = start_processes(Path(workdir), realistic=False,
                                                                latency_s=BURST_UPSTREAM_S, workers=workers,
                                                                gateway_cpus=cpus)
        try:
            direct_req = direct_request(sim_port, direct_body)
            gateway_req = prepare_post(HOST, gw_port, "/v1/images/generations", gateway_body)
            await run_load(HOST, gw_port, gateway_req, concurrency=4, seconds=1.0, max_requests=8)
            ratios = []
            for _ in range(rounds):
                direct = await run_burst(HOST, sim_port, direct_req, count=BURST_REQUESTS)
                rss_before = tree_rss_mb(gateway.pid)
                through = await run_burst(HOST, gw_port, gateway_req, count=BURST_REQUESTS)
                rss_after = tree_rss_mb(gateway.pid)
                ratios.append(through.wall_s / direct.wall_s)
                for path, run, extra in (("direct", direct, ""), ("gateway", through,
                                                                  f"{rss_after - rss_before:>12.0f}")):
                    print(f"{path:>9}{run.wall_s:>9.2f}{burst_percentile(run, 0.5):>8.2f}"
                          f"{burst_percentile(run, 0.99):>8.2f}{run.errors:>8}{extra}")
            print(f"gateway / direct wall time, median of rounds: {statistics.median(ratios):.2f}x")
        finally:
            for process in (gateway, simulator):
                process.terminate()
                process.wait(timeout=30)


def all_cpus() -> str:
    """Every CPU of the machine, as ``taskset -c`` takes them."""
    return ",".join(str(cpu) for cpu in sorted(os.sched_getaffinity(0) | set(range(os.cpu_count() or 1))))


def burst_percentile(run: BurstResult, q: float) -> float:
    ordered = sorted(run.latencies)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def bench_workers(rounds: int, seconds: float) -> None:
    """One worker against two at concurrency 32, small images, gateway on every CPU."""
    cpus = all_cpus()
    print(f"\n--workers: small 256x256 png at concurrency 32, gateway on CPUs {cpus} (client+simulator on 0); "
          f"{rounds} alternating rounds")
    print(f"{'workers':>8}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'gw CPU ms/req':>15}")
    _, gateway_body = bodies("256x256")
    with tempfile.TemporaryDirectory() as one_dir, tempfile.TemporaryDirectory() as two_dir:
        started = {workers: start_processes(Path(workdir), realistic=False, workers=workers, gateway_cpus=cpus)
                   for workers, workdir in ((1, one_dir), (2, two_dir))}
        try:
            requests = {workers: prepare_post(HOST, gw_port, "/v1/images/generations", gateway_body)
                        for workers, (_, _, _, gw_port) in started.items()}
            runs: dict[int, list[tuple[RunResult, float]]] = {1: [], 2: []}
            for workers, (_, _, _, gw_port) in started.items():
                await run_load(HOST, gw_port, requests[workers], concurrency=32, seconds=1.0)
            for _ in range(rounds):
                for workers, (_, gateway, _, gw_port) in started.items():
                    before = tree_cpu_seconds(gateway.pid)
                    run = await run_load(HOST, gw_port, requests[workers], concurrency=32, seconds=seconds)
                    runs[workers].append((run, (tree_cpu_seconds(gateway.pid) - before) / max(1, len(run.latencies))))
            for workers, results in runs.items():
                print(f"{workers:>8}{statistics.median(r.rps for r, _ in results):>9.0f}"
                      f"{fmt_ms(statistics.median(r.percentile(0.5) for r, _ in results)):>9}"
                      f"{fmt_ms(statistics.median(r.percentile(0.99) for r, _ in results)):>9}"
                      f"{sum(r.errors for r, _ in results):>8}"
                      f"{statistics.median(cpu for _, cpu in results) * 1000:>15.3f}")
        finally:
            for simulator, gateway, _, _ in started.values():
                for process in (gateway, simulator):
                    process.terminate()
                    process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--cases", default="small,large,burst,workers",
                        help="comma-separated: small, large, burst, workers")
    parser.add_argument("--burst-workers", type=int, default=1,
                        help="the burst case's gateway --workers (more than 1: on every CPU)")
    args = parser.parse_args()
    asyncio.run(bench(args.rounds, args.seconds, args.cases.split(","), args.burst_workers))


if __name__ == "__main__":
    main()
