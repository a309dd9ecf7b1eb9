"""An image's declared size, read from its header before anything decodes it.

A 500 KB PNG may declare 13000x13000 pixels and take 700 MB to decode (an image bomb). Pillow's
``Image.open`` reads only the header, so every place that decodes an image, an upload or a
vendor's answer, asks here first and refuses more pixels than its cap. Callers turn the refusal
into their own error: a 400 for a client's upload, a protocol error (fail over) for a vendor's.
"""

from __future__ import annotations

import io
import struct
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
