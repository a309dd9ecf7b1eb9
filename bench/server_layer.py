"""What the HTTP server layer costs per request, apart from the gateway: the ceiling on what a
server protocol of our own could save (issue 17's remaining c=1 CPU and latency).

Three servers answer every POST with the same 2 KB JSON body, each a process pinned to CPU 1 (the
client on CPU 0), driven in turn by the same keep-alive client, rounds alternating:

- ``bare``: an asyncio protocol on uvloop with httptools' parser, one ``writelines`` per answer:
  about the least a Python server can do per request;
- ``uvicorn``: uvicorn's httptools protocol and a plain ASGI app reading the body and answering;
- ``guarded``: the same under the protocol ``boltgate serve`` runs (``proxy.serving.guarded_protocol``:
  header and body deadlines, the connection cap, the send watch, ``one_write``).

    python bench/server_layer.py [--rounds 3] [--seconds 2]

It prints each server's CPU per request (``/proc/PID/stat``) and p50 at concurrency 1 and 32,
medians of the rounds. The gateway spends its whole request elsewhere too (routing, billing, the
vendor call): ``bench/overhead.py`` measures that; the difference ``guarded - bare`` is the part
a server of our own could at most remove.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from listening import start_on_a_free_port
from loadclient import prepare_post, run_load
from overhead import HOST, cpu_seconds, stop

ANSWER = b'{"created":1,"data":[{"b64_json":"' + b"A" * 2000 + b'"}]}'
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(ANSWER)
SERVERS = ("bare", "uvicorn", "guarded")
REPO = Path(__file__).resolve().parents[1]


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Read the whole body, answer ``ANSWER``; the lifespan acknowledged."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(ANSWER))]})
    await send({"type": "http.response.body", "body": ANSWER})


class BareProtocol(asyncio.Protocol):
    """httptools' parser and one write per answer, nothing else."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        import httptools

        self.transport: Any = transport
        self.parser = httptools.HttpRequestParser(self)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        self.transport.writelines([HEAD, ANSWER])


def serve(kind: str, port: int) -> None:
    import uvicorn
    import uvloop

    if kind == "bare":
        async def main() -> None:
            await asyncio.get_running_loop().create_server(BareProtocol, HOST, port, backlog=1024)
            await asyncio.Event().wait()

        uvloop.run(main())
        return
    http: Any = "httptools"
    if kind == "guarded":
        from proxy.serving.guarded_protocol import guarded_protocol
        from proxy.settings import ServerConfig

        http = guarded_protocol(ServerConfig())
    uvicorn.run(asgi_app, host=HOST, port=port, loop="uvloop", http=http, log_level="warning", access_log=False)


async def compare(rounds: int, seconds: float) -> None:
    os.sched_setaffinity(0, {0})
    started = {kind: start_on_a_free_port(
        lambda port, kind=kind: ["taskset", "-c", "1", sys.executable, __file__, "--serve", kind, "--port", str(port)],
        name=kind, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}) for kind in SERVERS}
    body = b'{"prompt": "a lighthouse at dusk", "size": "256x256", "response_format": "b64_json"}'
    try:
        for concurrency in (1, 32):
            cpu: dict[str, list[float]] = {kind: [] for kind in SERVERS}
            p50: dict[str, list[float]] = {kind: [] for kind in SERVERS}
            for _ in range(rounds):
                for kind, (process, port) in started.items():
                    request = prepare_post(HOST, port, "/v1/images/generations", body)
                    await run_load(HOST, port, request, concurrency=concurrency, seconds=0.5)
                    before = cpu_seconds(process.pid)
                    run = await run_load(HOST, port, request, concurrency=concurrency, seconds=seconds)
                    cpu[kind].append((cpu_seconds(process.pid) - before) / max(1, len(run.latencies)))
                    p50[kind].append(run.percentile(0.5))
            print(f"concurrency {concurrency}, {rounds} rounds of {seconds:g} s (medians)")
            for kind in SERVERS:
                print(f"  {kind:8s} CPU {statistics.median(cpu[kind]) * 1e6:7.1f} us/request   "
                      f"p50 {statistics.median(p50[kind]) * 1e3:6.3f} ms")
    finally:
        for process, _ in started.values():
            stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--serve", choices=SERVERS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
    else:
        asyncio.run(compare(args.rounds, args.seconds))


if __name__ == "__main__":
    main()
