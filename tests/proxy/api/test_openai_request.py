"""OpenAI's Images API body, as the SDK sends it, becomes one ``ImageRequest``; errors name the field."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest

from core.errors import InvalidRequest, ModelNotFound
from proxy.api.openai_request import parse_size, read_json_body, to_image_request

PROMPT = "a lighthouse in a storm"


def body(**fields: Any) -> dict[str, Any]:
    return {"prompt": PROMPT, **fields}


BAD_BODIES = [
    ("not-an-object", [PROMPT], 400, None, "invalid_request"),
    ("a-string", PROMPT, 400, None, "invalid_request"),
    ("missing-prompt", {"n": 1}, 400, "prompt", "invalid_request"),
    ("blank-prompt", body(prompt="   "), 400, "prompt", "invalid_request"),
    ("empty-prompt", body(prompt=""), 400, "prompt", "invalid_request"),
    ("prompt-4001-chars", body(prompt="p" * 4001), 400, "prompt", "invalid_request"),
    ("prompt-a-number", body(prompt=42), 400, "prompt", "invalid_request"),
    ("n-0", body(n=0), 400, "n", "invalid_request"),
    ("n-5", body(n=5), 400, "n", "invalid_request"),
    ("n-two", body(n="two"), 400, "n", "invalid_request"),
    ("size-100", body(size="100x100"), 400, "size", "invalid_request"),
    ("size-not-multiple-of-8", body(size="1001x1001"), 400, "size", "invalid_request"),
    ("size-abc", body(size="abc"), 400, "size", "invalid_request"),
    ("size-2048", body(size="2048x2048"), 400, "size", "invalid_request"),
    ("size-a-number", body(size=1024), 400, "size", "invalid_request"),
    ("steps-0", body(steps=0), 400, "steps", "invalid_request"),
    ("steps-51", body(steps=51), 400, "steps", "invalid_request"),
    ("num-inference-steps-51", body(num_inference_steps=51), 400, "num_inference_steps", "invalid_request"),
    ("seed-negative", body(seed=-1), 400, "seed", "invalid_request"),
    ("seed-2-32", body(seed=2**32), 400, "seed", "invalid_request"),
    ("guidance-negative", body(guidance_scale=-1), 400, "guidance_scale", "invalid_request"),
    ("response-format-gif", body(response_format="gif"), 400, "response_format", "invalid_request"),
    ("output-format-bmp", body(output_format="bmp"), 400, "output_format", "invalid_request"),
    ("unknown-field", body(sampler="euler"), 400, "sampler", "unknown_parameter"),
    ("unknown-model", body(model="dall-e-3"), 404, "model", "model_not_found"),
    ("strength-in-a-generation", body(strength=0.5), 400, "strength", "unknown_parameter"),
    ("max-price-negative", body(max_price_usd=-1), 400, "max_price_usd", "invalid_request"),
    ("max-price-not-a-number", body(max_price_usd="cheap"), 400, "max_price_usd", "invalid_request"),
    ("output-compression-101", body(output_compression=101), 400, "output_compression", "invalid_request"),
]


@pytest.mark.parametrize(("raw", "status", "param", "code"), [row[1:] for row in BAD_BODIES],
                         ids=[row[0] for row in BAD_BODIES])
def test_a_bad_body_is_refused_with_status_param_and_code(raw: Any, status: int, param: str | None,
                                                          code: str) -> None:
    with pytest.raises((InvalidRequest, ModelNotFound)) as raised:
        to_image_request(raw)

    error = raised.value
    assert (error.status_code, error.param, error.code) == (status, param, code)
    assert error.error_type == "invalid_request_error"
    assert error.message


def test_a_size_error_says_which_side_is_wrong() -> None:
    with pytest.raises(InvalidRequest) as raised:
        to_image_request(body(size="1024x100"))

    assert "height" in raised.value.message
    assert "(from size)" in raised.value.message


def test_an_unknown_field_is_named_in_the_message() -> None:
    with pytest.raises(InvalidRequest) as raised:
        to_image_request(body(qualty="hd"))

    assert raised.value.message == "Unrecognized request argument supplied: qualty"


def test_the_minimal_body_gets_the_defaults() -> None:
    request = to_image_request(body())

    assert request.prompt == PROMPT
    assert request.model == "sdxl-lightning"
    assert (request.n, request.width, request.height, request.steps) == (1, 1024, 1024, 4)
    assert (request.output_format, request.response_format) == ("png", "url")
    assert request.guidance_scale == 0.0
    assert request.init_image is None


def test_extra_body_fields_are_first_class() -> None:
    request = to_image_request(body(
        model="bytedance/stable-diffusion-xl-lightning", n=2, size="768x512", response_format="b64_json",
        output_format="webp", user="user-7", negative_prompt="blurry", seed=99, steps=8, guidance_scale=1.0,
        max_price_usd=0.02,
    ))

    assert request.model == "sdxl-lightning"
    assert (request.n, request.width, request.height) == (2, 768, 512)
    assert (request.response_format, request.output_format) == ("b64_json", "webp")
    assert (request.user, request.negative_prompt, request.seed, request.steps) == ("user-7", "blurry", 99, 8)
    assert request.guidance_scale == 1.0
    assert request.max_price_usd == Decimal("0.02")


def test_size_auto_is_1024_square() -> None:
    request = to_image_request(body(size="auto"))

    assert request.size == "1024x1024"


def test_num_inference_steps_is_an_alias_of_steps_and_steps_wins() -> None:
    assert to_image_request(body(num_inference_steps=8)).steps == 8
    assert to_image_request(body(num_inference_steps=8, steps=2)).steps == 2


def test_null_optional_fields_take_the_defaults() -> None:
    request = to_image_request(body(model=None, size=None, seed=None, steps=None, response_format=None))

    assert (request.size, request.steps, request.response_format) == ("1024x1024", 4, "url")


def test_form_fields_arrive_as_text_and_are_parsed() -> None:
    request = to_image_request({"prompt": PROMPT, "n": "2", "seed": "5", "strength": "0.25", "size": "512x512"},
                               init_image=b"\x89PNG")

    assert (request.n, request.seed, request.strength, request.width) == (2, 5, 0.25, 512)
    assert request.init_image == b"\x89PNG"


@pytest.mark.parametrize(("size", "expected"), [
    ("1024x1024", (1024, 1024)), ("512x768", (512, 768)), ("auto", (1024, 1024)), (None, (1024, 1024)),
])
def test_parse_size(size: str | None, expected: tuple[int, int]) -> None:
    assert parse_size(size) == expected


@pytest.mark.parametrize("size", ["1024", "1024x", "x1024", "1024*1024", "-512x512", "123456x1", "",
                                  "512X768", " 768x512", "\u0665\u0661\u0662x512"])
def test_parse_size_refuses_what_is_not_width_x_height(size: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_size(size)
    assert raised.value.param == "size"


@pytest.mark.parametrize("partial_images", [4, -1, 2.5, "2"])
def test_a_streams_partial_images_out_of_range_says_what_is_wrong_not_that_the_field_is_refused(
        partial_images: object) -> None:
    raw = orjson.dumps(body(stream=True, partial_images=partial_images))
    with pytest.raises(InvalidRequest) as raised:
        read_json_body(raw)
    assert (raised.value.param, raised.value.code) == ("partial_images", "invalid_request")
    assert "only with streaming" not in raised.value.message


@pytest.mark.parametrize("name", ["n", "seed", "steps", "num_inference_steps", "output_compression",
                                  "guidance_scale", "max_price_usd"])
def test_a_boolean_is_no_number_in_a_json_body_or_a_job(name: str) -> None:
    """JSON ``true`` is no integer (JSON Schema), though Python's ``True == 1``: the body, and a
    job's body (``to_image_request(strict=True)``), refuse it naming the field."""
    raw = {"prompt": "a fox", "output_format": "jpeg", name: True}
    for parse in (lambda: read_json_body(orjson.dumps(raw)), lambda: to_image_request(raw, strict=True)):
        with pytest.raises(InvalidRequest) as refused:
            parse()
        assert (refused.value.status_code, refused.value.param) == (400, name)
