"""A key's name holds no control character and no line separator, whether it was sent to the
admin API or written in the settings: one rule, stated once as a validator and once as a pattern."""

from __future__ import annotations

import re

import pytest

from pricing.key_names import NAME_PATTERN, printable_name

REFUSED = ["nul\u0000", "two\nlines", "tab\there", "bell\u0007", "del\u007f", "c1\u0085", "line\u2028separator",
           "paragraph\u2029separator"]


@pytest.mark.parametrize("name", REFUSED)
def test_a_name_with_a_control_character_or_a_line_separator_is_refused_saying_why(name: str) -> None:
    with pytest.raises(ValueError, match="control character"):
        printable_name(name)


def test_a_name_in_any_script_with_spaces_is_kept_as_it_is() -> None:
    assert printable_name("équipe Ünïcode 团队") == "équipe Ünïcode 团队"


def test_the_pattern_refuses_exactly_what_the_validator_refuses() -> None:
    """The pattern is what a client (or a schema fuzzer) reads in the API's document: it must agree
    with ``printable_name`` on every character."""
    documented = re.compile(NAME_PATTERN.removesuffix("$"))
    for code_point in range(0x3000):
        char = chr(code_point)
        try:
            printable_name(f"a{char}")
            accepted = True
        except ValueError:
            accepted = False
        assert (documented.fullmatch(f"a{char}") is not None) == accepted, hex(code_point)
