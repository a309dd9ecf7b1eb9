"""Comparing generated images: exactly, or up to the float rounding that batch shapes introduce."""

from __future__ import annotations

import numpy as np
from PIL import Image


def pixel_difference(a: Image.Image, b: Image.Image) -> tuple[int, float]:
    """(largest per-channel difference, share of channel values that differ at all)."""
    left = np.asarray(a.convert("RGB"), dtype=np.int16)
    right = np.asarray(b.convert("RGB"), dtype=np.int16)
    assert left.shape == right.shape
    delta = np.abs(left - right)
    return int(delta.max()), float((delta > 0).mean())


def same_up_to_rounding(a: Image.Image, b: Image.Image) -> bool:
    """The same image, allowing a one-level difference on under 1% of the values."""
    largest, share = pixel_difference(a, b)
    return largest <= 1 and share < 0.01


def clearly_different(a: Image.Image, b: Image.Image) -> bool:
    largest, share = pixel_difference(a, b)
    return largest > 8 and share > 0.2
