"""Images made on the spot with Pillow: noisy ones (which compress badly) and flat ones."""

from __future__ import annotations

import io
import random

from PIL import Image


def encode(fmt: str = "PNG", *, side: int = 64, mode: str = "RGB", flat: tuple[int, ...] | None = None,
           seed: int = 1) -> bytes:
    """An image in ``fmt``: random pixels, or one colour when ``flat`` is given."""
    if flat is not None:
        image = Image.new(mode, (side, side), flat)
    else:
        channels = len(Image.new(mode, (1, 1)).getbands())
        image = Image.frombytes(mode, (side, side), random.Random(seed).randbytes(side * side * channels))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()
