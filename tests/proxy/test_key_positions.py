"""A problem with a client key's entry names the entry by its place among ``api_keys``, counted
over every key as written (good ones too), in pydantic's own error as in ours: never the key."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from proxy.settings import Settings


def test_each_problem_names_its_entrys_place_and_keeps_its_type_and_message() -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(api_keys={"bg-one-secret": {}, "bg-two-secret": {"budget_credits": "lots"},
                           "bg-three-secret": {}, "bg-four-secret": {"unknown": 1}})

    problems = raised.value.errors(include_url=False)
    assert [(problem["loc"], problem["type"]) for problem in problems] == [
        (("api_keys", "<key 2>", "budget_credits"), "decimal_parsing"),
        (("api_keys", "<key 4>", "unknown"), "extra_forbidden")]
    assert problems[0]["msg"] == "Input should be a valid decimal"
    assert "secret" not in str(raised.value)


def test_keys_given_as_a_list_are_read_and_numbered_in_order() -> None:
    settings = Settings(api_keys=["bg-a", "bg-b"])
    assert {key: policy.name for key, policy in settings.api_keys.items()} == {"bg-a": "key-1", "bg-b": "key-2"}
