"""Field reading checks types and ranges as vendors do, naming the offending field."""

from __future__ import annotations

import pytest

from backends.simulators.fields import MAX_SEED, FieldReader, InvalidField


def test_values_within_range_are_read_and_missing_ones_default() -> None:
    fields = FieldReader({"steps": 4, "guidance": 1.5, "prompt": "hi"})

    assert fields.integer("steps", default=8, low=1, high=50) == 4
    assert fields.integer("n", default=1, low=1, high=4) == 1
    assert fields.number("guidance", default=0.0, low=0, high=20) == 1.5
    assert fields.prompt() == "hi"
    assert fields.text("negative_prompt") is None


@pytest.mark.parametrize(
    ("body", "read"),
    [
        ({"steps": 51}, lambda f: f.integer("steps", default=4, low=1, high=50)),
        ({"steps": 4.5}, lambda f: f.integer("steps", default=4, low=1, high=50)),
        ({"steps": True}, lambda f: f.integer("steps", default=4, low=1, high=50)),
        ({"prompt": "   "}, lambda f: f.prompt()),
        ({}, lambda f: f.prompt()),
        ({"prompt": "x" * 11}, lambda f: f.prompt(max_len=10)),
        ({"size": "1024"}, lambda f: f.size(low=256, high=2048)),
        ({"size": "128x128"}, lambda f: f.size(low=256, high=2048)),
        ({"mode": "fast"}, lambda f: f.choice("mode", ("slow",), default="slow")),
        ({"seed": -1}, lambda f: f.seed()),
    ],
)
def test_bad_values_raise_invalid_field_naming_the_field(body, read) -> None:
    with pytest.raises(InvalidField) as raised:
        read(FieldReader(body, prefix="input."))

    assert raised.value.name.startswith("input.")


def test_string_mode_parses_strings_and_refuses_anything_else() -> None:
    fields = FieldReader({"width": "512", "strength": "0.4", "height": 512}, strings=True)

    assert fields.integer("width", default=1024, low=256, high=1280) == 512
    assert fields.number("strength", default=0.5, low=0.3, high=0.8) == 0.4
    with pytest.raises(InvalidField, match="must be a string"):
        fields.integer("height", default=1024, low=256, high=1280)


def test_a_missing_seed_is_drawn_at_random() -> None:
    seeds = {FieldReader({}).seed() for _ in range(5)}

    assert len(seeds) > 1
    assert all(0 <= seed <= MAX_SEED for seed in seeds)


def test_a_body_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(InvalidField, match="input"):
        FieldReader([1, 2], prefix="input.")
