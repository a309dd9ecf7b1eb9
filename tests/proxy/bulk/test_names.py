"""Output names from a prompts file are plain file stems or refused."""

from __future__ import annotations

import pytest

from proxy.bulk.names import MAX_NAME, check_output_name, default_output_name


@pytest.mark.parametrize("name", ["fox", "fox_2", "Fox-1.final", "0001"])
def test_a_plain_stem_is_kept(name: str) -> None:
    assert check_output_name(name) == name


@pytest.mark.parametrize("name", ["", "../x", "a/../../b", "/etc/passwd", "a\\b", "..", ".", ".ssh",
                                  "a b", "fox\x00", "fox\n", "é", "con", "NUL.txt", "x" * (MAX_NAME + 1)])
def test_a_path_or_odd_name_is_refused(name: str) -> None:
    with pytest.raises(ValueError):
        check_output_name(name)


def test_a_default_name_is_a_safe_slug_of_the_prompt_and_the_key() -> None:
    name = default_output_name("A Red Fox / ../../etc, at dawn!", "bulk-0123456789abcdef")
    assert name == "a-red-fox-etc-at-dawn-0123456789"
    assert check_output_name(name) == name
    assert default_output_name("!!!", "bulk-abcdefabcdef") == "image-abcdefabcd"
