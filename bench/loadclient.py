"""A minimal keep-alive HTTP/1.1 load client on asyncio streams, cheap enough to share 2 cores.

Each connection sends one prepared request at a time and reads the answer by Content-Length;
every request is timed on its own (no coordinated-omission correction, no synthetic samples).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


@dataclass
class RunResult:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


def prepare_post(host: str, port: int, path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json",
             f"Content-Length: {len(body)}", "Connection: keep-alive"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    await reader.readexactly(length)
    return status


async def _connection(host: str, port: int, request: bytes, until: float, result: RunResult,
                      limit: int | None) -> None:
    reader, writer = await asyncio.open_connection(host, port, limit=2**24)
    try:
        while time.perf_counter() < until and (limit is None or len(result.latencies) < limit):
            started = time.perf_counter()
            writer.write(request)
            status = await _read_response(reader)
            if status == 200:
                result.latencies.append(time.perf_counter() - started)
            else:
                result.errors += 1
    finally:
        writer.close()


async def run_load(host: str, port: int, request: bytes, *, concurrency: int, seconds: float,
                   max_requests: int | None = None) -> RunResult:
    result = RunResult()
    started = time.perf_counter()
    until = started + seconds
    await asyncio.gather(*(_connection(host, port, request, until, result, max_requests)
                           for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result


@dataclass
class BurstResult:
    """``count`` requests, each on a new connection, all started at once."""

    wall_s: float
    errors: int
    latencies: list[float] = field(default_factory=list)


async def _one_shot(host: str, port: int, request: bytes, result: BurstResult, begun: float) -> None:
    try:
        reader, writer = await asyncio.open_connection(host, port, limit=2**24)
        try:
            writer.write(request)
            status = await _read_response(reader)
        finally:
            writer.close()
    except (OSError, asyncio.IncompleteReadError):
        result.errors += 1
        return
    if status == 200:
        result.latencies.append(time.perf_counter() - begun)
    else:
        result.errors += 1


async def run_burst(host: str, port: int, request: bytes, *, count: int) -> BurstResult:
    """Open ``count`` connections at once, one request each; the wall time until the last answer."""
    result = BurstResult(wall_s=0.0, errors=0)
    begun = time.perf_counter()
    await asyncio.gather(*(_one_shot(host, port, request, result, begun) for _ in range(count)))
    result.wall_s = time.perf_counter() - begun
    return result
