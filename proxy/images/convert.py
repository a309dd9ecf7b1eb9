"""Honour the requested ``output_format``: convert with Pillow only when the format differs.

The image is decoded only once its declared size is within the pixel cap (backends check it
first; this is the last line of defence), and one that cannot be decoded is the backend's
protocol error, never a 500.
"""

from __future__ import annotations

import asyncio
import io

from PIL import Image

from backends.base import GeneratedImage, ImageFormat
from core.errors import ImageRefused, VendorProtocolError
from core.image_header import DEFAULT_MAX_PIXELS, decoded

_PILLOW_NAMES = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


def _convert(data: bytes, fmt: ImageFormat) -> bytes:
    try:
        with decoded(data, DEFAULT_MAX_PIXELS) as image:
            return _encode(image, fmt)
    except ImageRefused as exc:
        raise VendorProtocolError(f"the image cannot be converted to {fmt}: {exc}") from exc


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
    return GeneratedImage(data=await asyncio.to_thread(_convert, image.data, fmt))
