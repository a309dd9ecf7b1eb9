"""No field of OpenAI's Images API is dropped in silence: each is honoured, mapped or refused."""

from __future__ import annotations

import re
from typing import Any

import jsonschema_rs
import pytest
from openai.types.image_edit_params import ImageEditParamsNonStreaming
from openai.types.image_generate_params import ImageGenerateParamsNonStreaming
from pydantic import ValidationError

from core.errors import InvalidRequest
from core.request import ImageRequest
from proxy.api.openai_fields import (
    FIDELITY_STRENGTH,
    QUALITY_STEPS,
    REFUSED_EDIT_FILES,
    REFUSED_FIELDS,
    REFUSED_VALUES,
    SIZE_PATTERN,
)
from proxy.api.openai_request import (
    OpenAIEditForm,
    OpenAIImageBody,
    from_form,
    from_json_body,
    parse_size,
    price_ceiling,
    read_form,
    to_image_request,
)

PROMPT = "a lighthouse in a storm"


def sdk_fields(params: Any) -> set[str]:
    return set(params.__required_keys__) | set(params.__optional_keys__)


def test_every_field_the_openai_sdk_sends_to_generations_is_known() -> None:
    unknown = sdk_fields(ImageGenerateParamsNonStreaming) - set(OpenAIImageBody.model_fields)

    assert unknown == set()


def test_every_field_the_openai_sdk_sends_to_edits_is_known() -> None:
    files = {"image", *REFUSED_EDIT_FILES}

    unknown = sdk_fields(ImageEditParamsNonStreaming) - set(OpenAIEditForm.model_fields) - files

    assert unknown == set()


def refused(raw: dict[str, Any], *, edit: bool = False) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as raised:
        to_image_request({"prompt": PROMPT, **raw}, init_image=b"\x89PNG" if edit else None)
    return raised.value


@pytest.mark.parametrize("field", sorted(REFUSED_FIELDS))
def test_a_refused_field_is_a_400_naming_it_and_why(field: str) -> None:
    error = refused({field: 2})

    assert (error.status_code, error.param, error.code) == (400, field, "unsupported_parameter")
    assert REFUSED_FIELDS[field] in error.message


@pytest.mark.parametrize("field", sorted(REFUSED_FIELDS))
def test_a_refused_field_sent_as_null_is_absent(field: str) -> None:
    assert to_image_request({"prompt": PROMPT, field: None}).prompt == PROMPT


@pytest.mark.parametrize(("field", "value"), [(field, value) for field, values in REFUSED_VALUES.items()
                                              for value in values])
def test_a_refused_value_is_a_400_naming_the_field_and_why(field: str, value: object) -> None:
    error = refused({field: value})

    assert (error.status_code, error.param, error.code) == (400, field, "unsupported_value")
    assert REFUSED_VALUES[field][value] in error.message


@pytest.mark.parametrize(("field", "value"), [("background", "opaque"), ("background", "auto"),
                                              ("moderation", "auto"), ("stream", False)])
def test_the_values_that_describe_what_boltgate_does_are_accepted(field: str, value: object) -> None:
    assert to_image_request({"prompt": PROMPT, field: value}).prompt == PROMPT


@pytest.mark.parametrize("quality", sorted(QUALITY_STEPS))
def test_quality_is_mapped_to_steps(quality: str) -> None:
    request = to_image_request({"prompt": PROMPT, "quality": quality})

    assert request.steps == (QUALITY_STEPS[quality] or ImageRequest.model_fields["steps"].default)


def test_explicit_steps_win_over_quality() -> None:
    assert to_image_request({"prompt": PROMPT, "quality": "low", "steps": 6}).steps == 6
    assert to_image_request({"prompt": PROMPT, "quality": "low", "num_inference_steps": 6}).steps == 6


@pytest.mark.parametrize("fidelity", sorted(FIDELITY_STRENGTH))
def test_input_fidelity_is_mapped_to_strength_in_edits(fidelity: str) -> None:
    request = from_form({"prompt": PROMPT, "input_fidelity": fidelity}, b"\x89PNG")

    assert request.strength == FIDELITY_STRENGTH[fidelity]
    assert from_form({"prompt": PROMPT, "input_fidelity": fidelity, "strength": "0.9"}, b"\x89PNG").strength == 0.9


def test_input_fidelity_and_strength_belong_to_edits_only() -> None:
    for field, value in (("strength", 0.5), ("input_fidelity", "high")):
        error = refused({field: value})
        assert (error.param, error.code) == (field, "unknown_parameter")
        assert "/v1/images/edits" in error.message


def test_output_compression_is_the_jpeg_and_webp_quality_and_png_stays_lossless() -> None:
    assert to_image_request({"prompt": PROMPT, "output_format": "jpeg", "output_compression": 40}
                            ).output_compression == 40
    assert to_image_request({"prompt": PROMPT, "output_format": "webp", "output_compression": 0}
                            ).output_compression == 0
    for png in ({"output_format": "png"}, {}):
        assert to_image_request({"prompt": PROMPT, "output_compression": 80, **png}).output_compression is None


def test_safety_identifier_is_the_user_and_wins_over_user() -> None:
    assert to_image_request({"prompt": PROMPT, "user": "u-1"}).user == "u-1"
    assert to_image_request({"prompt": PROMPT, "user": "u-1", "safety_identifier": "s-1"}).user == "s-1"
    assert to_image_request({"prompt": PROMPT, "user": "u-1", "safety_identifier": ""}).user == "u-1"


def test_a_form_says_stream_in_text_and_an_edit_streams() -> None:
    assert read_form({"prompt": PROMPT, "stream": "false"}, b"\x89PNG").stream is False
    streamed = read_form({"prompt": PROMPT, "stream": "true", "partial_images": "2"}, b"\x89PNG")
    assert (streamed.stream, streamed.partial_images) == (True, 2)
    for fields, param in (({"stream": "yes"}, "stream"), ({"partial_images": "1"}, "partial_images"),
                          ({"stream": "true", "partial_images": "4"}, "partial_images")):
        with pytest.raises(InvalidRequest) as raised:
            read_form({"prompt": PROMPT, **fields}, b"\x89PNG")
        assert raised.value.param == param


def test_an_async_job_body_refuses_streaming() -> None:
    for field, value in (("stream", True), ("partial_images", 1)):
        assert refused({field: value}).param == field


# --- a JSON body means what its JSON types say ---------------------------------------------------


@pytest.mark.parametrize(("raw", "param"), [
    (b'{"prompt": "x", "n": "2"}', "n"),
    (b'{"prompt": "x", "seed": true}', "seed"),
    (b'{"prompt": "x", "steps": 4.5}', "steps"),
    (b'{"prompt": "x", "n": true}', "n"),
    (b'{"prompt": "x", "stream": 0}', "stream"),
    (b'{"prompt": "x", "max_price_usd": "cheap"}', "max_price_usd"),
    (b'{"prompt": "x", "max_price_usd": "1e3"}', "max_price_usd"),
    (b'{"prompt": "x", "guidance_scale": "1"}', "guidance_scale"),
    (b'{"prompt": 7}', "prompt"),
])
def test_a_json_value_of_the_wrong_type_is_refused(raw: bytes, param: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        from_json_body(raw)

    assert raised.value.param == param


@pytest.mark.parametrize(("raw", "code"), [(b"", "invalid_json"), (b"{", "invalid_json"), (b"[1]", "invalid_request"),
                                           (b'"a kite"', "invalid_request")])
def test_a_body_that_is_not_a_json_object_is_refused(raw: bytes, code: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        from_json_body(raw)

    assert raised.value.code == code


def test_a_json_body_takes_numbers_where_numbers_are_due() -> None:
    request = from_json_body(b'{"prompt": "x", "n": 2, "guidance_scale": 1, "max_price_usd": 0.1, "seed": 3}')

    assert (request.n, request.guidance_scale, str(request.max_price_usd), request.seed) == (2, 1.0, "0.1", 3)


def test_a_price_ceiling_is_a_number_or_a_decimal_string() -> None:
    assert str(from_json_body(b'{"prompt": "x", "max_price_usd": "0.0001"}').max_price_usd) == "0.0001"
    assert str(from_json_body(b'{"prompt": "x", "max_price_usd": 0.0001}').max_price_usd) == "0.0001"


def test_a_whole_number_written_with_a_fraction_is_an_integer_as_json_schema_says() -> None:
    request = from_json_body(b'{"prompt": "x", "n": 2.0, "steps": 33.0, "seed": 7.0}')

    assert (request.n, request.steps, request.seed) == (2, 33, 7)


def test_the_price_ceiling_header_is_read_as_a_price() -> None:
    assert str(price_ceiling("0.05")) == "0.05"
    assert price_ceiling(None) is None
    assert str(from_json_body(b'{"prompt": "x"}', ceiling="0.2").max_price_usd) == "0.2"
    assert str(from_json_body(b'{"prompt": "x", "max_price_usd": 0.1}', ceiling="0.2").max_price_usd) == "0.1"
    for bad in ("cheap", "-1", "NaN", "Infinity", ""):
        with pytest.raises(InvalidRequest) as raised:
            price_ceiling(bad)
        assert raised.value.param == "x-boltgate-max-price-usd"


# --- the documented patterns say what the validators do -------------------------------------------


def size_is_served(size: str) -> bool:
    try:
        width, height = parse_size(size)
        ImageRequest(prompt="x", width=width, height=height)
    except (InvalidRequest, ValidationError):
        return False
    return True


def test_the_documented_size_pattern_is_exactly_the_sizes_served() -> None:
    sides = [*range(0, 1700, 4), 10000, 99999]
    odd = ["auto", "", "x", "512X512", " 512x512", "512x512 ", "512x512\n", "0512x512"]
    sizes = [*odd, *(f"{side}x512" for side in sides), *(f"512x{side}" for side in sides)]

    disagreements = [size for size in sizes if bool(re.fullmatch(SIZE_PATTERN, size)) != size_is_served(size)]

    assert disagreements == []


def test_the_documented_prompt_pattern_is_exactly_the_prompts_served() -> None:
    pattern = OpenAIImageBody.model_json_schema()["properties"]["prompt"]["pattern"]
    blank_here = [code for code in range(0x110000) if re.search(pattern, chr(code)) is None]

    assert blank_here == [code for code in range(0x110000) if chr(code).isspace()]
    for prompt in ("a", " a ", " ", "\t\n", "\x1c", "\u3000", "\x00", "\u200b", "\ufeff"):
        try:
            served = to_image_request({"prompt": prompt}).prompt == prompt
        except InvalidRequest:
            served = False
        assert bool(re.search(pattern, prompt)) == served, repr(prompt)


@pytest.mark.parametrize("character", ["\x1c", "\x1f", "\x85", "\ufeff", "\u3000", " ", "a"])
def test_the_prompt_pattern_means_the_same_to_a_json_schema_validator(character: str) -> None:
    pattern = OpenAIImageBody.model_json_schema()["properties"]["prompt"]["pattern"]
    validator = jsonschema_rs.validator_for({"type": "string", "pattern": pattern})

    assert validator.is_valid(character) == (not character.isspace())
