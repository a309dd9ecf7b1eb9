"""A door's input table: the vendor's fields become the request model, and everything else is
refused by the vendor's own name for it."""

from __future__ import annotations

import pytest

from core.errors import InvalidRequest
from proxy.doors.eachlabs import INPUT as EACHLABS_INPUT
from proxy.doors.runflow import INPUT as RUNFLOW_INPUT


def test_vendor_fields_become_the_request_in_the_vendors_format() -> None:
    request = RUNFLOW_INPUT.to_request({"prompt": "a fox", "guidance": 1.5, "steps": 8, "seed": 0,
                                        "width": 512, "height": 768, "negative_prompt": ""})
    assert (request.guidance_scale, request.steps, request.seed, request.size) == (1.5, 8, 0, "512x768")
    assert request.negative_prompt is None  # "" means not given, as Runflow's example sends it
    assert (request.output_format, request.response_format) == ("jpeg", "url")


def test_string_values_and_a_null_seed_are_read_as_eachlabs_sends_them() -> None:
    request = EACHLABS_INPUT.to_request({"prompt": "a fox", "width": "512", "num_outputs": "2",
                                         "num_inference_steps": "4", "guidance_scale": "0", "seed": None,
                                         "scheduler": "K_EULER", "disable_safety_checker": "true"})
    assert (request.width, request.n, request.steps, request.output_format) == (512, 2, 4, "png")
    assert "seed" not in request.model_fields_set


@pytest.mark.parametrize(("values", "param", "code"), [
    ({"prompt": "a fox", "stpes": 4}, "input.stpes", "unknown_parameter"),
    ({"prompt": "a fox", "steps": 0}, "input.steps", "invalid_request"),
    ({"prompt": "a fox", "guidance": "lots"}, "input.guidance", "invalid_request"),
    ({"prompt": " "}, "input.prompt", "invalid_request"),
    ({}, "input.prompt", "invalid_request"),
])
def test_runflow_errors_name_runflows_field(values: dict[str, object], param: str, code: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        RUNFLOW_INPUT.to_request(values)
    assert (refused.value.param, refused.value.code) == (param, code)


def test_a_documented_field_the_gateway_cannot_honour_is_refused_not_ignored() -> None:
    with pytest.raises(InvalidRequest) as refused:
        EACHLABS_INPUT.to_request({"prompt": "a fox", "image": "data:image/png;base64,AAAA"})
    assert (refused.value.param, refused.value.code) == ("input.image", "unsupported_parameter")
    with pytest.raises(InvalidRequest) as other_scheduler:
        EACHLABS_INPUT.to_request({"prompt": "a fox", "scheduler": "DDIM"})
    assert (other_scheduler.value.param, other_scheduler.value.code) == ("input.scheduler", "unsupported_value")


def test_the_input_must_be_an_object() -> None:
    with pytest.raises(InvalidRequest) as refused:
        RUNFLOW_INPUT.to_request(["a fox"])
    assert refused.value.param == "input"


@pytest.mark.parametrize("value", [[], {}, ["K_EULER"], {"K_EULER": True}])
def test_a_list_or_object_where_a_value_is_accepted_is_refused_by_name(value: object) -> None:
    with pytest.raises(InvalidRequest) as refused:
        EACHLABS_INPUT.to_request({"prompt": "a fox", "scheduler": value})
    assert (refused.value.param, refused.value.code) == ("input.scheduler", "unsupported_value")


@pytest.mark.parametrize("name", ["steps", "seed", "width", "height", "guidance"])
@pytest.mark.parametrize("value", [True, False])
def test_a_boolean_is_no_runflow_number(name: str, value: bool) -> None:
    """Pydantic's lax mode (which reads Eachlabs' strings) would read ``true`` as 1: a JSON
    boolean is refused where a number is due, naming the field."""
    with pytest.raises(InvalidRequest) as refused:
        RUNFLOW_INPUT.to_request({"prompt": "a fox", name: value})
    assert (refused.value.param, refused.value.code) == (f"input.{name}", "invalid_request")
    assert "boolean" in refused.value.message


@pytest.mark.parametrize("name", ["num_inference_steps", "num_outputs", "seed", "width", "height",
                                  "guidance_scale"])
def test_a_boolean_is_no_eachlabs_number(name: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        EACHLABS_INPUT.to_request({"prompt": "a fox", name: True})
    assert refused.value.param == f"input.{name}"


def test_a_boolean_where_the_vendor_takes_one_is_still_accepted() -> None:
    request = EACHLABS_INPUT.to_request({"prompt": "a fox", "disable_safety_checker": True})
    assert request.prompt == "a fox"
