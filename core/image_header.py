"""An image's declared size, read from its header before anything decodes it.

A 500 KB PNG may declare 13000x13000 pixels and take 700 MB to decode (an image bomb). Pillow's
``Image.open`` reads only the header, so every place that decodes an image, an upload or a
vendor's answer, asks here first and refuses more pixels than its cap. Callers turn the refusal
into their own error: a 400 for a client's upload, a protocol error (fail over) for a vendor's.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from PIL import Image, UnidentifiedImageError

from core.errors import ImageRefused

DEFAULT_MAX_PIXELS = 4096 * 4096
"""16.7 megapixels: a 4096x4096 photo; every size a backend serves (1536x1536 at most) is far below."""
_PILLOW_WARNS_PAST: int | None = Image.MAX_IMAGE_PIXELS  # None only when someone switched its check off
DECODER_MAX_PIXELS = 2 * _PILLOW_WARNS_PAST if _PILLOW_WARNS_PAST is not None else 2**63 - 1
"""Pillow refuses to open a larger image (its decompression-bomb error) whatever cap is passed
here, so no cap above it can be honoured (about 179 megapixels, a 13400x13400 image)."""

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IHDR_START = _PNG_SIGNATURE + b"\x00\x00\x00\x0dIHDR"
PNG_HEADER_BYTES = 41
"""A PNG's signature (8), its IHDR chunk (25) and the next chunk's length and type (8)."""
_PNG_MODES = frozenset({(1, 0), (2, 0), (4, 0), (8, 0), (16, 0), (8, 2), (16, 2), (1, 3), (2, 3), (4, 3), (8, 3),
                        (8, 4), (16, 4), (8, 6), (16, 6)})
"""The (bit depth, colour type) pairs the PNG standard allows, which are the ones Pillow reads."""
_UNREADABLE = (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


@contextmanager
def open_bounded(data: bytes, max_pixels: int) -> Iterator[Image.Image]:
    """The opened (not yet decoded) image, once its declared size is within ``max_pixels``."""
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageRefused(f"the image declares more than {max_pixels} pixels", code="image_too_large") from exc
    except _UNREADABLE as exc:
        raise ImageRefused(f"the image could not be read: {exc}", code="invalid_image") from exc
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise ImageRefused(f"the image declares {width}x{height}, more than {max_pixels} pixels",
                               code="image_too_large")
        yield image


def declared_size(data: bytes, max_pixels: int) -> tuple[int, int]:
    """Width and height from the header alone; refused when unreadable or over ``max_pixels``.

    A PNG's size is read straight from its IHDR chunk (the first 24 bytes, a microsecond); other
    formats go through Pillow's header parser."""
    if data[:8] == _PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        if width * height > max_pixels:
            raise ImageRefused(f"the image declares {width}x{height}, more than {max_pixels} pixels",
                               code="image_too_large")
        return width, height
    with open_bounded(data, max_pixels) as image:
        return image.size


def plain_png_size(head: bytes) -> tuple[int, int] | None:
    """The width and height a PNG declares, read from its first ``PNG_HEADER_BYTES`` without
    Pillow, when its header has the plain shape Pillow would read to the same answer; None
    otherwise, and the caller asks Pillow (which walks every chunk before the image data and
    says what is wrong).

    The plain shape: an IHDR chunk of 13 bytes with a good checksum, a bit depth and colour
    type the standard allows, compression, filter and interlace methods it defines, directly
    followed by the image data (IDAT, as Pillow and diffusers write it); and between 1 pixel and
    the size past which Pillow warns of a bomb. About 1 us, where ``Image.open`` takes 25 us on a
    small image (a measurable share of a served request's CPU)."""
    if not (head.startswith(_PNG_IHDR_START) and head[37:41] == b"IDAT" and len(head) >= PNG_HEADER_BYTES):
        return None
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", head[16:29])
    if ((depth, colour) not in _PNG_MODES or compression or filtering or interlace > 1
            or zlib.crc32(head[12:29]) != int.from_bytes(head[29:33], "big")):
        return None
    if width < 1 or height < 1 or (_PILLOW_WARNS_PAST is not None and width * height > _PILLOW_WARNS_PAST):
        return None
    return width, height


def check_structure(data: bytes, max_pixels: int) -> tuple[int, int]:
    """``declared_size`` plus Pillow's ``verify``: the whole file is walked (for PNG, every chunk
    and its CRC) without decoding pixels, so a truncated or corrupt file is caught cheaply."""
    with open_bounded(data, max_pixels) as image:
        size = image.size
        try:
            image.verify()
        except _UNREADABLE as exc:
            raise ImageRefused(f"the image is corrupt: {exc}", code="invalid_image") from exc
    return size


@contextmanager
def decoded(data: bytes, max_pixels: int) -> Iterator[Image.Image]:
    """The fully decoded image, decoded only once its declared size is within ``max_pixels``."""
    with open_bounded(data, max_pixels) as image:
        try:
            image.load()
        except _UNREADABLE as exc:
            raise ImageRefused(f"the image could not be decoded: {exc}", code="invalid_image") from exc
        yield image
