"""A flat image is a safety filter's answer: it fails the route instead of reaching the client."""

from __future__ import annotations

import pytest

from backends.base import BackendResult, GeneratedImage
from core.errors import ContentFiltered, ImageRefused, UnusableOutput
from core.image_header import DEFAULT_MAX_PIXELS
from core.request import ImageRequest
from proxy.images.blank import SUSPICION_LIMITS, is_flat, reject_blank_images
from tests.backends.vendors.hostile import png_declaring
from tests.memory_peak import heap_peak
from tests.proxy.images.samples import encode

CAP = DEFAULT_MAX_PIXELS
"""The default pixel cap (the settings' ``outbound.max_image_pixels`` unless an operator moves it)."""


def request(side: int) -> ImageRequest:
    return ImageRequest(prompt="a cat", width=side, height=side, seed=1)


@pytest.mark.parametrize("colour", [(0, 0, 0), (255, 255, 255), (120, 60, 200)])
def test_a_single_colour_image_is_flat(colour: tuple[int, int, int]) -> None:
    assert is_flat(GeneratedImage(data=encode("PNG", side=256, flat=colour)), DEFAULT_MAX_PIXELS)


def test_a_noisy_image_is_not_flat() -> None:
    assert not is_flat(GeneratedImage(data=encode("PNG", side=64)), DEFAULT_MAX_PIXELS)


def test_a_nearly_flat_image_within_the_tolerance_is_flat() -> None:
    assert is_flat(GeneratedImage(data=encode("PNG", side=64, mode="L", flat=(3,))), DEFAULT_MAX_PIXELS)


async def test_a_solid_black_png_is_rejected_as_content_filtered() -> None:
    black = GeneratedImage(data=encode("PNG", side=1024, flat=(0, 0, 0)))

    with pytest.raises(ContentFiltered) as raised:
        await reject_blank_images(BackendResult(images=[black]), request(1024), "runflow", max_pixels=CAP)

    assert "runflow" in raised.value.message
    assert raised.value.failover and not raised.value.retryable


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
@pytest.mark.parametrize("side", [256, 512, 1024])
async def test_a_flat_image_is_rejected_in_every_format_and_size(fmt: str, side: int) -> None:
    """Even the smallest flat JPEG, whose fixed tables outweigh its pixels, is caught."""
    flat = GeneratedImage(data=encode(fmt, side=side, flat=(0, 0, 0)))

    with pytest.raises(ContentFiltered):
        await reject_blank_images(BackendResult(images=[flat]), request(side), "runflow", max_pixels=CAP)


async def test_one_blank_image_among_good_ones_fails_the_result() -> None:
    good = GeneratedImage(data=encode("PNG", side=64))
    black = GeneratedImage(data=encode("JPEG", side=256, flat=(0, 0, 0)))

    with pytest.raises(ContentFiltered):
        await reject_blank_images(BackendResult(images=[good, black]), request(256), "eachlabs", max_pixels=CAP)


async def test_noisy_images_pass() -> None:
    images = [GeneratedImage(data=encode("PNG", side=64, seed=seed)) for seed in range(3)]

    await reject_blank_images(BackendResult(images=images), request(256), "eachlabs", max_pixels=CAP)


async def test_a_large_image_is_not_decoded_at_all() -> None:
    """Only suspiciously small images are decoded: a big one passes on its size alone."""
    big = GeneratedImage(b64=GeneratedImage(data=encode("PNG", side=256)).b64)
    fixed, per_pixel = SUSPICION_LIMITS["png"]
    assert len(big) > fixed + 256 * 256 * per_pixel

    await reject_blank_images(BackendResult(images=[big]), request(256), "aigateway", max_pixels=CAP)

    assert big._data is None


async def test_a_bomb_that_compresses_like_a_flat_image_is_unusable_not_a_decode() -> None:
    bomb = GeneratedImage(data=png_declaring(50_000, 50_000))
    with heap_peak() as peak, pytest.raises(UnusableOutput, match="declares"):
        await reject_blank_images(BackendResult(images=[bomb]), request(256), "runflow", max_pixels=CAP)
    assert peak.mb < 10


async def test_a_blank_image_was_billed_by_the_vendor_so_it_is_a_loss_to_book() -> None:
    result = BackendResult(images=[GeneratedImage(data=encode("PNG", side=256, flat=(0, 0, 0)))], run_seconds=1.2)

    with pytest.raises(ContentFiltered) as raised:
        await reject_blank_images(result, request(256), "eachlabs", max_pixels=CAP)

    assert raised.value.billed and raised.value.run_seconds == 1.2


async def test_a_small_image_that_does_not_decode_is_unusable_not_a_crash() -> None:
    broken = encode("PNG", side=256, flat=(0, 0, 0))
    corrupt = broken[:40] + bytes(len(broken) - 52) + broken[-12:]  # header and IEND kept, data zeroed
    result = BackendResult(images=[GeneratedImage(data=corrupt)])

    with pytest.raises(UnusableOutput) as raised:
        await reject_blank_images(result, request(256), "callmissed", max_pixels=CAP)

    assert raised.value.billed and not raised.value.retryable


PAST_DEFAULT = 4097
"""A side past the default cap: 4097 x 4097 pixels is just over 4096 x 4096."""


def black_square(side: int) -> GeneratedImage:
    """A flat one-bit PNG: a couple of kB even past the default cap, so always a suspect."""
    return GeneratedImage(data=encode("PNG", side=side, mode="1", flat=(0,)))


async def test_a_blank_image_past_the_default_cap_is_found_blank_when_the_operators_cap_allows_it() -> None:
    large = black_square(PAST_DEFAULT)
    with pytest.raises(ImageRefused):
        is_flat(large, DEFAULT_MAX_PIXELS)

    with pytest.raises(ContentFiltered, match="blank"):
        await reject_blank_images(BackendResult(images=[large]), request(1024), "runflow",
                                  max_pixels=PAST_DEFAULT * PAST_DEFAULT)


async def test_a_suspect_past_a_lowered_cap_is_unusable_not_decoded() -> None:
    black = black_square(256)
    assert is_flat(black, 256 * 256)

    with pytest.raises(UnusableOutput, match="more than 65535 pixels"):
        await reject_blank_images(BackendResult(images=[black]), request(256), "runflow", max_pixels=256 * 256 - 1)
