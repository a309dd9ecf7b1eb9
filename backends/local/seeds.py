"""The seed of each image of a request, so that no two requests ever share an image.

Image 0 of a request is seeded with the request's seed itself (what a client that asks for one
image with seed 42 expects). Image ``i >= 1`` is seeded with a 64-bit BLAKE2b hash of
``(seed, i)``, mapped above ``2**32``: out of reach of every request's own seed (at most
``2**32 - 1``), and a collision between two derived seeds is a 1-in-``2**63`` accident. Seeding
``seed + i`` instead made seed 6 with ``n=2`` return seed 7's image as its second. The same seed
and ``n`` always give the same images, in any batch.
"""

from __future__ import annotations

import hashlib

from core.request import MAX_SEED, ImageRequest

_DERIVED_BASE = MAX_SEED + 1
_DERIVED_SPAN = 2**63 - _DERIVED_BASE


def image_seed(seed: int, index: int) -> int:
    """The generator seed of image ``index`` of a request seeded ``seed``."""
    if index == 0:
        return seed
    digest = hashlib.blake2b(f"boltgate-image-seed:{seed}:{index}".encode(), digest_size=8).digest()
    return _DERIVED_BASE + int.from_bytes(digest, "big") % _DERIVED_SPAN


def seeds_of(request: ImageRequest) -> list[int]:
    """The seeds of the request's ``n`` images, in order."""
    return [image_seed(request.seed, index) for index in range(request.n)]
