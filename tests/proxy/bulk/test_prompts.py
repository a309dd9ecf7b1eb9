"""Prompt files: plain lines or JSON lines, every mistake named by its line, keys that repeat."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import BulkInputError
from proxy.bulk.prompts import plan_prompts, read_prompt_file


def planned(tmp_path: Path, text: str, **defaults: object) -> list:  # type: ignore[type-arg]
    path = tmp_path / "prompts.txt"
    path.write_text(text, encoding="utf-8")
    return plan_prompts(read_prompt_file(path), dict(defaults))


def test_plain_and_json_lines_mix_and_a_line_overrides_the_flags(tmp_path: Path) -> None:
    prompts = planned(tmp_path, 'a fox\n\n# skipped\n{"prompt": "a boat", "n": 2, "size": "512x512", '
                      '"seed": 7, "name": "boat"}\n', size="256x256", steps=6)
    assert [(p.line, p.options.prompt) for p in prompts] == [(1, "a fox"), (4, "a boat")]
    assert prompts[0].options.body() == {"prompt": "a fox", "n": 1, "size": "256x256", "steps": 6,
                                         "output_format": "png", "response_format": "b64_json"}
    assert prompts[1].options.body()["size"] == "512x512" and prompts[1].options.seed == 7
    assert prompts[1].file_names == ["boat-1.png", "boat-2.png"]


def test_the_same_request_gets_the_same_key_in_every_run_and_a_repeat_gets_its_own(tmp_path: Path) -> None:
    first = planned(tmp_path, "a fox\na fox\na boat\n")
    again = planned(tmp_path, "a boat\na fox\na fox\n")
    assert len({p.idempotency_key for p in first}) == 3
    assert {p.idempotency_key for p in first} == {p.idempotency_key for p in again}
    assert planned(tmp_path, "a fox\n", steps=8)[0].idempotency_key != first[0].idempotency_key
    salted = plan_prompts([(1, {"prompt": "a fox"})], {}, salt="take 2")
    assert salted[0].idempotency_key != first[0].idempotency_key


@pytest.mark.parametrize(("text", "message"), [
    ('a fox\n{"prompt": "x",\n', "line 2: not valid JSON"),
    ('a fox\n{"prompt": "x"} trailing\n', "line 2: not valid JSON"),
    ('a fox\n{"prompt": "x", "name": "a", "output": "b"}\n', "line 2: output: Extra inputs"),
    ('{"prompt": "x"}\n{"promt": "y"}\n', "line 2: unknown option 'promt'"),
    ('{"prompt": "x", "n": "two"}\n', "line 1: n:"),
    ('{"prompt": "   "}\n', "line 1: prompt:"),
    ('{"n": 2}\n', "line 1: prompt: Field required"),
    ('{"prompt": "x", "name": "../up"}\n', "line 1: name:"),
    ('{"prompt": "x", "name": "a"}\n{"prompt": "y", "name": "A"}\n', "line 2: writes A.png, as line 1 does"),
    ("# nothing\n\n", "no prompts in the file"),
])
def test_a_bad_line_is_refused_with_its_number(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(BulkInputError, match=message.replace("(", r"\(").replace(".", r"\.")):
        planned(tmp_path, text)


def test_an_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BulkInputError, match="no such file"):
        read_prompt_file(tmp_path / "missing.txt")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"a fox\n\xff\xfe\n")
    with pytest.raises(BulkInputError, match="not UTF-8"):
        read_prompt_file(binary)
