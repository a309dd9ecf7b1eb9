"""What checking a vendor image at the boundary costs the gateway (``backends.vendors.image_check``).

Times ``check_image`` on SDXL-sized images (1024x1024, grained like real output, ~1.5 MB PNG) held
as bytes and as base64 text (the pass-through case, which must not decode the whole image), and,
for scale, what a full decode would cost. Each figure is the median of ``--repeats`` runs.

    python bench/image_check.py [--repeats 200]
"""

from __future__ import annotations

import argparse
import base64
import io
import random
import statistics
import time
from collections.abc import Callable

from PIL import Image

from backends.base import GeneratedImage
from backends.vendors.image_check import check_image
from core.image_header import DEFAULT_MAX_PIXELS as CAP


def grained(fmt: str, side: int = 1024) -> bytes:
    pixels = random.Random(7).randbytes(side * side * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(out, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out.getvalue()


def median_us(work: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def full_decode(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as image:
        image.load()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    print(f"{'image':<22}{'size':>10}{'check bytes':>14}{'check b64':>12}{'full decode':>14}")
    for fmt in ("PNG", "JPEG"):
        data = grained(fmt)
        text = base64.b64encode(data).decode()
        as_bytes = median_us(lambda data=data: check_image(GeneratedImage(data=data), "bench", CAP), args.repeats)
        as_b64 = median_us(lambda text=text: check_image(GeneratedImage(b64=text), "bench", CAP), args.repeats)
        decode = median_us(lambda data=data: full_decode(data), max(5, args.repeats // 20))
        print(f"{fmt + ' 1024x1024':<22}{len(data) / 1e6:>8.2f}MB{as_bytes:>12.0f}us{as_b64:>10.0f}us"
              f"{decode:>12.0f}us")


if __name__ == "__main__":
    main()
