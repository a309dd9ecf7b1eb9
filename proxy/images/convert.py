"""Honour the requested ``output_format``: convert with Pillow only when the format differs.

The image is decoded only once its declared size is within the pixel cap (backends check it
first; this is the last line of defence), and one that cannot be decoded is the backend's
unusable output (the route billed it; a 502), never a 500.
"""

from __future__ import annotations

import asyncio
import io

from PIL import Image, UnidentifiedImageError

from backends.base import GeneratedImage, ImageFormat
from core.errors import ImageRefused, UnusableOutput
from core.image_header import DEFAULT_MAX_PIXELS, decoded

_PILLOW_NAMES = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


def _convert(data: bytes, fmt: ImageFormat) -> bytes:
    with decoded(data, DEFAULT_MAX_PIXELS) as image:  # ImageRefused past the cap or undecodable
        return _encode(image, fmt)


def _encode(image: Image.Image, fmt: ImageFormat) -> bytes:
    converted = image.convert("RGB") if fmt == "jpeg" and image.mode not in ("RGB", "L") else image
    out = io.BytesIO()
    options = {"quality": 90} if fmt in ("jpeg", "webp") else {}
    converted.save(out, format=_PILLOW_NAMES[fmt], **options)
    return out.getvalue()


async def to_format(image: GeneratedImage, fmt: ImageFormat) -> GeneratedImage:
    """The same image in ``fmt``; untouched (no decode) when it already is. Pillow runs off the loop."""
    if image.format == fmt:
        return image
    try:
        converted = await asyncio.to_thread(_convert, image.data, fmt)
    except (ImageRefused, UnidentifiedImageError, OSError, ValueError, SyntaxError,
            Image.DecompressionBombError) as exc:
        # A vendor image that passed the header checks but does not decode: a 502, never a 500.
        raise UnusableOutput(f"the served image does not decode: {exc}") from exc
    return GeneratedImage(data=converted)
