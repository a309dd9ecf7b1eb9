"""The one request model: defaults, bounds, model aliases, and a JSON round trip."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from core.errors import ModelNotFound
from core.request import CANONICAL_MODEL, MAX_SEED, ImageRequest, draw_seed, resolve_model


def valid(**fields: object) -> dict[str, object]:
    return {"prompt": "a red bicycle", **fields}


def test_defaults_are_one_1024_square_png_in_four_steps_without_guidance_as_a_url() -> None:
    request = ImageRequest.model_validate(valid())

    assert (request.width, request.height, request.size) == (1024, 1024, "1024x1024")
    assert request.n == 1
    assert request.steps == 4
    assert request.guidance_scale == 0.0
    assert request.output_format == "png"
    assert request.response_format == "url"
    assert request.model == CANONICAL_MODEL
    assert request.init_image is None and not request.is_edit
    assert request.max_price_usd is None


def test_a_seed_is_drawn_in_range_when_absent() -> None:
    seeds = {ImageRequest.model_validate(valid()).seed for _ in range(20)}

    assert all(0 <= seed <= MAX_SEED for seed in seeds)
    assert len(seeds) > 1


def test_draw_seed_stays_in_range() -> None:
    assert all(0 <= draw_seed() <= 2**32 - 1 for _ in range(200))


def test_a_given_seed_is_kept() -> None:
    assert ImageRequest.model_validate(valid(seed=42)).seed == 42


def test_the_request_is_frozen() -> None:
    request = ImageRequest.model_validate(valid())

    with pytest.raises(ValidationError):
        request.n = 2  # type: ignore[misc]


@pytest.mark.parametrize(("field", "value"), [
    ("prompt", "x"),
    ("prompt", "x" * 4000),
    ("n", 1),
    ("n", 4),
    ("width", 256),
    ("width", 1536),
    ("height", 264),
    ("steps", 1),
    ("steps", 50),
    ("seed", 0),
    ("seed", 2**32 - 1),
    ("guidance_scale", 20.0),
    ("strength", 0.0),
    ("strength", 1.0),
    ("max_price_usd", Decimal("0")),
    ("output_format", "webp"),
    ("response_format", "b64_json"),
])
def test_values_at_the_bounds_are_accepted(field: str, value: object) -> None:
    assert getattr(ImageRequest.model_validate(valid(**{field: value})), field) == value


@pytest.mark.parametrize(("field", "value"), [
    ("prompt", ""),
    ("prompt", "   \n\t"),
    ("prompt", "x" * 4001),
    ("n", 0),
    ("n", 5),
    ("width", 248),
    ("width", 1544),
    ("width", 1020),
    ("height", 1001),
    ("steps", 0),
    ("steps", 51),
    ("seed", -1),
    ("seed", 2**32),
    ("guidance_scale", -0.1),
    ("guidance_scale", 20.5),
    ("strength", 1.01),
    ("max_price_usd", Decimal("-0.01")),
    ("output_format", "gif"),
    ("response_format", "html"),
    ("negative_prompt", "x" * 4001),
    ("user", "u" * 257),
])
def test_values_out_of_bounds_are_refused_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as raised:
        ImageRequest.model_validate(valid(**{field: value}))

    assert raised.value.errors()[0]["loc"] == (field,)


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        ImageRequest.model_validate(valid(sampler="euler"))


def test_derived_properties() -> None:
    request = ImageRequest.model_validate(valid(width=512, height=768, init_image=b"\x89PNG"))

    assert request.size == "512x768"
    assert request.megapixels == pytest.approx(0.393216)
    assert request.is_edit


@pytest.mark.parametrize("name", [
    "sdxl-lightning",
    "sdxl-lightning-4step",
    "sd-xl-lightning",
    "bytedance/stable-diffusion-xl-lightning",
    "SDXL-Lightning",
    "ByteDance/Stable-Diffusion-XL-Lightning",
    "  sdxl-lightning-4step ",
    None,
])
def test_every_alias_resolves_to_the_canonical_model(name: str | None) -> None:
    assert resolve_model(name) == CANONICAL_MODEL == "sdxl-lightning"


@pytest.mark.parametrize("name", ["dall-e-3", "gpt-image-1", "sdxl", "", "sdxl-lightning-8step"])
def test_an_unknown_model_is_a_404_model_not_found(name: str) -> None:
    with pytest.raises(ModelNotFound) as raised:
        resolve_model(name)

    error = raised.value
    assert (error.status_code, error.code, error.param) == (404, "model_not_found", "model")
    assert repr(name) in error.message or f"'{name}'" in error.message


def test_a_json_round_trip_keeps_everything_including_the_image_bytes() -> None:
    image = bytes(range(256)) * 4
    request = ImageRequest.model_validate(valid(
        negative_prompt="blurry", n=2, width=512, height=768, steps=8, guidance_scale=1.5, seed=123,
        output_format="webp", response_format="b64_json", user="u-1", init_image=image, strength=0.4,
        max_price_usd=Decimal("0.0123"),
    ))

    text = request.model_dump_json()
    again = ImageRequest.model_validate_json(text)

    assert again == request
    assert again.init_image == image
    assert '"init_image":"AAECAwQF' in text  # base64, not a list of numbers
