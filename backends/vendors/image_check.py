"""Is a delivered image an image? Checked at the vendor boundary, without decoding its pixels.

A vendor image that starts like a PNG or JPEG but is cut short or corrupt, or that declares
absurd dimensions (a decompression bomb), must fail over like any unreadable answer, never reach
the client and never be charged. Decoding every image would cost the gateway real CPU (and undo
the base64 pass-through), so the check reads only what it needs: the header, through Pillow,
for the format and dimensions, and the last bytes for the format's end marker, which a
truncated file lacks.
"""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

from backends.base import GeneratedImage
from core.errors import UnusableOutput, VendorProtocolError

MAX_SIDE = 4096
"""No vendor is asked for more than 1536 pixels a side; an image past this is not an answer."""
MAX_PIXELS = MAX_SIDE * MAX_SIDE
HEADER_BYTES = 256 * 1024
"""Enough for any header Pillow needs (a JPEG's EXIF and ICC segments come before its size)."""

_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_JPEG_END = b"\xff\xd9"
_PILLOW_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


def check_image(image: GeneratedImage, vendor: str) -> None:
    """Raise ``UnusableOutput`` unless ``image`` has a readable header, sane dimensions and an end."""
    try:
        head = image.head(HEADER_BYTES)
        tail = image.tail(16)
    except VendorProtocolError as exc:
        raise UnusableOutput(f"{vendor} image: {exc.message}") from exc
    width, height = _dimensions(head, image.format, vendor)
    if width < 1 or height < 1 or width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise UnusableOutput(f"{vendor} image declares {width}x{height} pixels; at most {MAX_SIDE} a side")
    if not _ends_well(image, head, tail):
        raise UnusableOutput(f"{vendor} {image.format.upper()} image is cut short or corrupt")


def _dimensions(head: bytes, fmt: str, vendor: str) -> tuple[int, int]:
    try:
        with Image.open(io.BytesIO(head), formats=[_PILLOW_FORMATS[fmt]]) as opened:
            return opened.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UnusableOutput(f"{vendor} {fmt.upper()} image has no readable header: {exc}") from exc


def _ends_well(image: GeneratedImage, head: bytes, tail: bytes) -> bool:
    if image.format == "png":
        return tail.endswith(_PNG_END)
    if image.format == "jpeg":
        return tail.endswith(_JPEG_END)
    # WebP: the RIFF header states the file's length.
    return int.from_bytes(head[4:8], "little") + 8 == len(image)
