"""Ways to check that a vendor's 2 MB base64 string can be spliced into a JSON answer as it is
(``backends.vendors.b64_splice``): no control character, quote, backslash or non-ASCII byte.

Each candidate runs on the same realistic body (a 1.5 MB image as base64), timed with ``timeit``
(best of ``--repeat`` runs of ``--number`` calls: a lower bound, the machine being shared). The
ones marked "part" check only part of what is needed; "copy" ones copy the string first, as
their API takes no offsets.

    python bench/b64_checks.py [--number 20] [--repeat 7]
"""

from __future__ import annotations

import argparse
import base64
import binascii
import os
import re
import timeit
from collections.abc import Callable

import msgspec
import numpy
import orjson

from backends.vendors.b64_splice import HIGHEST, LOWEST, VendorImages

BODY = orjson.dumps({"created": 1, "data": [{"b64_json": base64.b64encode(os.urandom(1_500_000)).decode()}]})
START = BODY.index(b'"b64_json":"') + len(b'"b64_json":"')
END = BODY.index(b'"', START)
VIEW = memoryview(BODY)[START:END]
TOKEN = memoryview(BODY)[START - 1:END + 1]
ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
SAME_IF_ALPHABET = bytes(byte if byte in ALPHABET else ord('"') for byte in range(256))
OUTSIDE = re.compile(rb"[^+/-9=A-Za-z]")
CONTROLS = [bytes([byte]) for byte in range(32)]


class _Entry(msgspec.Struct):
    b64_json: msgspec.Raw = msgspec.Raw()


class _Answer(msgspec.Struct):
    data: list[_Entry]


_BEFORE = msgspec.json.Decoder(_Answer)
"""What ``b64_splice`` decoded before: every token of the body, each string's bytes checked."""


def _numpy_min_max() -> bool:
    values = numpy.frombuffer(BODY, numpy.uint8, count=END - START, offset=START)
    return bool(values.min() >= LOWEST and values.max() <= HIGHEST)


def _translate() -> bool:
    text = bytes(VIEW)
    return text.translate(SAME_IF_ALPHABET) is text


CANDIDATES: dict[str, Callable[[], object]] = {
    "msgspec, the whole body (before)": lambda: _BEFORE.decode(BODY),
    "b64_splice.decode, the whole body (now)": lambda: VendorImages.decode(BODY),
    "numpy min/max (now)": _numpy_min_max,
    "part: bytes.find the closing quote": lambda: BODY.find(b'"', START),
    "part: a backslash in the body": lambda: b"\\" in BODY,
    "part: bytes.isascii, the whole body": BODY.isascii,
    "copy: bytes.isascii": lambda: bytes(VIEW).isascii(),
    "part, copy: str(view, 'ascii')": lambda: str(VIEW, "ascii"),
    "part: 32 bytes.find, one per control byte": lambda: [BODY.find(byte, START, END) for byte in CONTROLS],
    "copy: bytes.translate, same if alphabet": _translate,
    "copy: bytes.translate, deleting the alphabet": lambda: bytes(VIEW).translate(None, ALPHABET),
    "binascii.a2b_base64 strict": lambda: binascii.a2b_base64(VIEW, strict_mode=True),
    "re: search outside the alphabet": lambda: OUTSIDE.search(VIEW),
    "orjson, the string token": lambda: orjson.loads(TOKEN),
    "msgspec, the string token": lambda: msgspec.json.decode(TOKEN),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--number", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"base64 string {len(VIEW) / 2**20:.2f} MiB; microseconds per call, best of {args.repeat} x {args.number}")
    for name, candidate in CANDIDATES.items():
        best = min(timeit.repeat(candidate, number=args.number, repeat=args.repeat)) / args.number
        print(f"  {name:<46}{best * 1e6:10.1f}")


if __name__ == "__main__":
    main()
