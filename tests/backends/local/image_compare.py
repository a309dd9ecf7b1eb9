"""Comparing generated images: exactly, or up to the float rounding that batch shapes introduce."""

from __future__ import annotations

import numpy as np
from PIL import Image

from backends.local.encoding import AnyImage, RawImage


def as_pil(image: AnyImage) -> Image.Image:
    return image.to_pil() if isinstance(image, RawImage) else image


def pixel_difference(a: AnyImage, b: AnyImage) -> tuple[int, float]:
    """(largest per-channel difference, share of channel values that differ at all)."""
    left = np.asarray(as_pil(a).convert("RGB"), dtype=np.int16)
    right = np.asarray(as_pil(b).convert("RGB"), dtype=np.int16)
    assert left.shape == right.shape
    delta = np.abs(left - right)
    return int(delta.max()), float((delta > 0).mean())


def same_up_to_rounding(a: AnyImage, b: AnyImage) -> bool:
    """The same image, allowing a one-level difference on under 1% of the values."""
    largest, share = pixel_difference(a, b)
    return largest <= 1 and share < 0.01


def clearly_different(a: AnyImage, b: AnyImage) -> bool:
    largest, share = pixel_difference(a, b)
    return largest > 8 and share > 0.2
