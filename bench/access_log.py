"""What one access line costs the gateway: ``proxy.api.access_log.write`` in both formats.

    python bench/access_log.py [--lines 20000]

Writes to /dev/null through the real handler and formatter (``core.logs``), so the figure is the
formatting and the handler's lock, not the terminal.
"""

from __future__ import annotations

import argparse
import os
import time

from core.logs import configure_logging
from proxy.api.access_log import AccessRecord, write


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=20000)
    lines = parser.parse_args().lines
    record = AccessRecord("POST", "/v1/images/generations", "9f2c" * 8)
    record.status = 200
    record.served = {"backend": "runflow", "region": "eu", "attempts": "1", "cost_usd": "0.004050"}
    with open(os.devnull, "w") as sink:
        for log_format in ("human", "json"):
            configure_logging("info", "json" if log_format == "json" else "human", stream=sink)
            started = time.perf_counter()
            for _ in range(lines):
                write(record, log_prompts=False)
            per_line = (time.perf_counter() - started) / lines
            print(f"{log_format:5}  {per_line * 1e6:6.1f} us per access line")


if __name__ == "__main__":
    main()
