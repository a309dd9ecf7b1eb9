"""How much of the gateway's answer the bulk CLI reads, and the reading itself, bounded.

The gateway is a boundary like any other: a wrong ``--url`` (a file server, a proxy's error
page), a broken gateway or a hostile one can send a body with no end, or a small gzip body that
inflates a thousandfold. Unbounded, one such answer takes the CLI's memory with it; bounded, it is
one failed prompt with a message saying why.

The cap for a prompt's answer, unless ``--max-answer-mb`` sets one, is the largest answer its
request could honestly get: ``n`` images of its size, each as large as an uncompressed 8-bit RGBA
image (4 bytes a pixel, more than any PNG, JPEG or WebP of real pixels takes), base64-encoded,
plus room for the JSON around them. One 1024x1024 image gets about 6.4 MB; four 1536x1536 ones
about 49 MB (MB as ``--max-answer-mb`` counts them, 2^20 bytes). An error answer needs only
its message: it is read up to ``ERROR_BODY_BYTES``.

Bodies are read raw and decompressed here (``read_decoded``, the vendor clients' bounded
decoder): every step of inflating a gzip body is held under the cap.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import httpx

from backends.vendors.http.base import read_decoded, refuse_declared
from core.errors import VendorBodyTooLarge, VendorUnavailable
from core.request import MAX_SIDE
from proxy.bulk.prompts import PromptOptions

MiB = 1024 * 1024
BYTES_PER_PIXEL = 4
"""8-bit RGBA, uncompressed: the most a real image of a size takes in any format served."""
IMAGE_OVERHEAD_BYTES = 64 * 1024
"""Per image: format headers, metadata, a revised prompt."""
ENVELOPE_BYTES = 1 * MiB
"""The JSON around the images: billing, usage, seeds."""
ERROR_BODY_BYTES = 64 * 1024
"""An error answer is read this far; its message is in the first few hundred bytes."""
ACCEPTED_ENCODINGS = "gzip, deflate"
"""What ``read_decoded`` can inflate within the cap (httpx would otherwise offer br and zstd)."""
_SIZE = re.compile(r"(\d{1,5})x(\d{1,5})")


@dataclass(frozen=True, slots=True)
class ReadAnswer:
    """A body read within its cap, or (``body`` None) the reason it was left unread."""

    body: bytes | None
    refusal: str = ""


def answer_limit(options: PromptOptions) -> int:
    """The most bytes an answer to ``options`` could honestly take (module docstring)."""
    width, height = _sides(options.size)
    image = width * height * BYTES_PER_PIXEL + IMAGE_OVERHEAD_BYTES
    return max(1, options.n) * math.ceil(image / 3) * 4 + ENVELOPE_BYTES


def _sides(size: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT``; for anything else (``auto``) the largest side the gateway serves, so
    the cap never refuses an answer the gateway may legitimately give."""
    match = _SIZE.fullmatch(size.strip())
    if match is None:
        return MAX_SIDE, MAX_SIDE
    return int(match.group(1)), int(match.group(2))


def describe(limit: int) -> str:
    """In MB as ``--max-answer-mb`` counts them (MiB), or in bytes when below a tenth of one."""
    return f"{limit / MiB:.1f} MB" if limit >= MiB // 10 else f"{limit} bytes"


async def read_answer(response: httpx.Response, limit: int) -> ReadAnswer:
    """The body of a streamed ``response``, decompressed, if it is at most ``limit`` bytes (and
    ``Content-Length`` announces no more); else nothing more of it is read.

    A body whose encoding is broken, or one we never asked for, is ``httpx.DecodingError``."""
    url = str(response.request.url)
    try:
        refuse_declared(response.headers.get("content-length"), url, limit)
        return ReadAnswer(await read_decoded(response.aiter_raw(), response.headers.get("content-encoding", ""),
                                             url, limit))
    except VendorBodyTooLarge as error:
        return ReadAnswer(None, error.message)
    except VendorUnavailable as error:
        raise httpx.DecodingError(error.message, request=response.request) from None
