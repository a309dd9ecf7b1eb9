"""``python -m backends.simulators``: serve vendor simulators in the foreground until stopped.

Prints ``VENDOR BASE_URL`` per line once all listen (benchmarks read these, and pin the
process to a CPU with taskset). With ``--port-base N`` vendor i listens on N + i, in the
order given.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from backends.simulators.config import RESPONSE_SHAPES, SimulatorConfig
from backends.simulators.server import start_simulators, stop_simulators
from backends.simulators.vendors import VENDORS
from core.logs import configure_logging


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = SimulatorConfig()
    parser = argparse.ArgumentParser(prog="python -m backends.simulators", description=__doc__)
    parser.add_argument("--vendor", action="append", choices=VENDORS, help="repeatable; default: all five")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port-base", type=int, default=0, help="0 picks free ports")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    parser.add_argument("--api-key", default=defaults.api_key)
    parser.add_argument("--queued", type=float, default=defaults.queued_s, help="job vendors, seconds")
    parser.add_argument("--running", type=float, default=defaults.running_s, help="job vendors, seconds")
    parser.add_argument("--response-shape", choices=RESPONSE_SHAPES, default="data", help="imageapi only")
    parser.add_argument("--realistic-images", action="store_true", help="~1.5 MB PNGs at 1024x1024")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging("warning")  # the one format; the URLs below say that they listen
    vendors: list[str] = args.vendor or list(VENDORS)
    config = SimulatorConfig(
        api_key=args.api_key,
        latency_s=args.latency,
        queued_s=args.queued,
        running_s=args.running,
        response_shape=args.response_shape,
        realistic_images=args.realistic_images,
    )
    servers = start_simulators(vendors, config, host=args.host, port_base=args.port_base)
    for vendor, server in servers.items():
        print(f"{vendor} {server.base_url}", flush=True)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    stopping.wait()
    stop_simulators(servers.values())
    return 0


if __name__ == "__main__":
    sys.exit(main())
