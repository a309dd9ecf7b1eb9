"""Image seeds: image 0 keeps the request's seed, the others never meet another request's."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from backends.local.seeds import image_seed, seeds_of
from core.request import MAX_SEED, ImageRequest

SEEDS = st.integers(min_value=0, max_value=MAX_SEED)
INDEXES = st.integers(min_value=0, max_value=3)


def test_image_zero_is_the_request_s_seed_and_the_rest_are_derived_above_every_seed() -> None:
    seeds = seeds_of(ImageRequest(prompt="a cat", seed=6, n=4))
    assert seeds[0] == 6
    assert all(MAX_SEED < seed < 2**63 for seed in seeds[1:])
    assert seeds == seeds_of(ImageRequest(prompt="a dog", seed=6, n=4))  # same seed and n, same images


@given(SEEDS, INDEXES, SEEDS, INDEXES)
def test_distinct_seeds_never_share_an_image_seed(seed: int, index: int, other: int, other_index: int) -> None:
    if (seed, index) != (other, other_index):
        assert image_seed(seed, index) != image_seed(other, other_index)


def test_no_collision_among_the_images_of_many_neighbouring_requests() -> None:
    seeds = [image_seed(seed, index) for seed, index in itertools.product(range(20_000), range(4))]
    assert len(set(seeds)) == len(seeds)
