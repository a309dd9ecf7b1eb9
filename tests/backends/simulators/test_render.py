"""Rendering: real, deterministic images, cheap to repeat thanks to the cache."""

from __future__ import annotations

import base64
import dataclasses
import io

from PIL import Image

from backends.simulators.render import RenderCache, RenderedImage, RenderSpec, decodable, render

SPEC = RenderSpec(vendor="runflow", prompt="an orchard", seed=42, width=320, height=192)


def opened(image: RenderedImage) -> Image.Image:
    return Image.open(io.BytesIO(image.data))


def test_the_image_has_the_requested_size_and_format() -> None:
    png, jpeg = opened(render(SPEC)), opened(render(dataclasses.replace(SPEC, fmt="jpeg")))

    assert (png.format, png.size) == ("PNG", (320, 192))
    assert (jpeg.format, jpeg.size) == ("JPEG", (320, 192))


def test_equal_specs_give_equal_bytes_and_any_input_changes_them() -> None:
    variants = [
        dataclasses.replace(SPEC, seed=43),
        dataclasses.replace(SPEC, prompt="a meadow"),
        dataclasses.replace(SPEC, vendor="eachlabs"),
        dataclasses.replace(SPEC, steps=8),
    ]

    assert render(SPEC).data == render(SPEC).data
    assert all(render(variant).data != render(SPEC).data for variant in variants)


def test_a_blank_image_is_solid_black_and_as_small_as_a_vendors_encoder_makes_it() -> None:
    blank = render(dataclasses.replace(SPEC, width=512, height=512, blank=True))

    assert opened(blank).convert("RGB").getextrema() == ((0, 0), (0, 0), (0, 0))
    assert len(blank.data) < 1000


def test_image_to_image_keeps_the_source_showing_by_strength() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (50, 50), (0, 255, 0)).save(buffer, format="PNG")

    def edited(strength: float) -> tuple[int, ...]:
        spec = dataclasses.replace(SPEC, init_image=buffer.getvalue(), strength=strength)
        return tuple(opened(render(spec)).convert("RGB").getpixel((310, 185)))  # type: ignore[arg-type]

    assert edited(0.3)[1] >= 0.7 * 255
    assert edited(0.8)[1] < edited(0.3)[1]


def test_realistic_images_weigh_like_real_model_output() -> None:
    spec = dataclasses.replace(SPEC, width=512, height=512)

    light, heavy = render(spec), render(dataclasses.replace(spec, realistic=True))

    assert len(heavy.data) > 250_000 > 10 * len(light.data)
    assert render(dataclasses.replace(spec, realistic=True)).data == heavy.data


def test_base64_is_the_encoding_of_the_bytes() -> None:
    image = render(SPEC)

    assert base64.b64decode(image.b64) == image.data


async def test_the_cache_renders_each_spec_once() -> None:
    cache = RenderCache()

    first = await cache.obtain(SPEC)

    assert await cache.obtain(SPEC) is first
    assert cache.get(dataclasses.replace(SPEC, seed=1)) is None


def test_the_cache_evicts_the_least_recently_used() -> None:
    cache = RenderCache(max_entries=2)
    specs = [dataclasses.replace(SPEC, seed=seed) for seed in range(3)]
    cache.put(specs[0], RenderedImage.of(b"0"))
    cache.put(specs[1], RenderedImage.of(b"1"))
    cache.get(specs[0])

    cache.put(specs[2], RenderedImage.of(b"2"))

    assert cache.get(specs[1]) is None
    assert cache.get(specs[0]) is not None and cache.get(specs[2]) is not None


def test_the_cache_holds_to_its_byte_budget_counting_base64_and_sources() -> None:
    cache = RenderCache(max_bytes=30)
    cache.put(SPEC, RenderedImage.of(b"x" * 6))  # 6 bytes + 8 of base64
    cache.put(dataclasses.replace(SPEC, seed=1), RenderedImage.of(b"y" * 6))
    assert cache.get(SPEC) is not None

    cache.put(dataclasses.replace(SPEC, init_image=b"z" * 5), RenderedImage.of(b"y" * 6))

    assert cache.get(SPEC) is None


def test_only_whole_images_are_decodable() -> None:
    data = render(SPEC).data

    assert decodable(data)
    assert not decodable(data[: len(data) // 2])
    assert not decodable(b"not an image")
