"""A b64-in, b64-out image passing through: what parsing the vendor's JSON and writing the
client's costs, per way of doing it, on a realistic 1024x1024 PNG (about 1.5 MB, 2 MB as base64).

Each way runs in one process, alternating with the others, ``--rounds`` times ``--repeat``
calls; the figure is the median of the rounds' per-call time (the machine drifts, see
BENCHMARKING.md).

    python bench/b64_passthrough.py [--rounds 7] [--repeat 50]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import msgspec
import orjson

from backends.base import GeneratedImage
from backends.simulators.render import RenderSpec, render
from backends.vendors.b64_splice import VendorImages
from proxy.images.body import images_body

Way = Callable[[bytes], bytes]


def vendor_body() -> bytes:
    image = render(RenderSpec(vendor="callmissed", prompt="a lighthouse", seed=7, width=1024, height=1024,
                              realistic=True))
    return orjson.dumps({"created": 1, "data": [{"b64_json": image.b64}]})


def orjson_round_trip(raw: bytes) -> bytes:
    """Before: the whole body decoded (the base64 copied into a str), then encoded again."""
    text = orjson.loads(raw)["data"][0]["b64_json"]
    return orjson.dumps({"created": 1, "data": [{"b64_json": text, "revised_prompt": "a lighthouse"}]})


class _Item(msgspec.Struct):
    b64_json: str


class _Body(msgspec.Struct):
    data: list[_Item]


_DECODER = msgspec.json.Decoder(_Body)


def msgspec_round_trip(raw: bytes) -> bytes:
    """msgspec's typed decode (a str again), orjson's encode."""
    text = _DECODER.decode(raw).data[0].b64_json
    return orjson.dumps({"created": 1, "data": [{"b64_json": text, "revised_prompt": "a lighthouse"}]})


def spliced(raw: bytes) -> bytes:
    """Now: ``b64_splice`` finds the base64 (``bytes.find``, numpy's min/max, no copy), the image
    is checked from its head and tail, and the client's body is the vendor's bytes spliced
    between small pieces."""
    images = VendorImages.decode(raw)
    image = GeneratedImage(b64=images.b64_images[0])
    image.head(4096)
    image.tail(16)
    return images_body({"created": 1, "data": [{"b64_json": image.b64_ascii, "revised_prompt": "a lighthouse"}]})


WAYS: dict[str, Way] = {"orjson loads + dumps": orjson_round_trip, "msgspec decode + orjson dumps": msgspec_round_trip,
                        "b64_splice + splice": spliced}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    raw = vendor_body()
    expected = orjson_round_trip(raw)
    for name, way in WAYS.items():
        assert orjson.loads(way(raw)) == orjson.loads(expected), name
    times: dict[str, list[float]] = {name: [] for name in WAYS}
    for _ in range(args.rounds):
        for name, way in WAYS.items():
            started = time.process_time()
            for _ in range(args.repeat):
                way(raw)
            times[name].append((time.process_time() - started) / args.repeat)
    print(f"vendor body {len(raw) / 2**20:.2f} MiB; CPU ms per image, median of {args.rounds} rounds "
          f"of {args.repeat}")
    for name, values in times.items():
        print(f"  {name:<32}{statistics.median(values) * 1000:8.3f}")


if __name__ == "__main__":
    main()
