"""Honour the requested ``output_format`` and ``output_compression``: re-encode with Pillow only
when the format differs or the client asked for an encoder quality.

The image is decoded only once its declared size is within the pixel cap (backends check it
first; this is the last line of defence). The cap is the caller's, the settings'
``outbound.max_image_pixels`` that the backends hold a vendor's image to, so an image the backend
let through is never refused here and none past it is decoded. One that cannot be decoded is the backend's
unusable output (the route billed it; a 502), never a 500.
"""

from __future__ import annotations

import asyncio
import io

from PIL import Image, UnidentifiedImageError

from backends.base import GeneratedImage, ImageFormat
from core.errors import ImageRefused, UnusableOutput
from core.image_header import decoded

_PILLOW_NAMES = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


DEFAULT_QUALITY = 90
"""The jpeg/webp encoder quality of a converted image when the client asked for none."""


def _convert(data: bytes, fmt: ImageFormat, quality: int | None, max_pixels: int) -> bytes:
    with decoded(data, max_pixels) as image:  # ImageRefused past the cap or undecodable
        return _encode(image, fmt, quality)


def _encode(image: Image.Image, fmt: ImageFormat, quality: int | None = None) -> bytes:
    converted = image.convert("RGB") if fmt == "jpeg" and image.mode not in ("RGB", "L") else image
    out = io.BytesIO()
    options = {"quality": DEFAULT_QUALITY if quality is None else quality} if fmt in ("jpeg", "webp") else {}
    converted.save(out, format=_PILLOW_NAMES[fmt], **options)
    return out.getvalue()


async def to_format(image: GeneratedImage, fmt: ImageFormat, quality: int | None = None, *,
                    max_pixels: int) -> GeneratedImage:
    """The same image in ``fmt`` (jpeg and webp at ``quality``, 0-100); untouched (no decode) when
    it already is in ``fmt`` and no quality is asked for. Pillow runs off the loop, and decodes
    only an image that declares at most ``max_pixels`` pixels."""
    if image.format == fmt and quality is None:
        return image
    try:
        converted = await asyncio.to_thread(_convert, image.data, fmt, quality, max_pixels)
    except (ImageRefused, UnidentifiedImageError, OSError, ValueError, SyntaxError,
            Image.DecompressionBombError) as exc:
        # A vendor image that passed the header checks but does not decode: a 502, never a 500.
        raise UnusableOutput(f"the served image does not decode: {exc}") from exc
    return GeneratedImage(data=converted)
