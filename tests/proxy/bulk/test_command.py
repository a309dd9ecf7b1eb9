"""``boltgate generate``'s flags: where the gateway and key come from, what is refused up front."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from proxy.bulk.command import DEFAULT_URL, resolve_connection
from proxy.bulk.summary import EXIT_USAGE
from proxy.cli import build_parser, main


def args(*extra: str) -> argparse.Namespace:
    return build_parser().parse_args(["generate", "x", "-o", "out", *extra])


def test_flags_beat_boltgates_variables_which_beat_openais() -> None:
    env = {"BOLTGATE_URL": "http://gw:8000/", "BOLTGATE_API_KEY": "bg-env",
           "OPENAI_BASE_URL": "https://other/v1", "OPENAI_API_KEY": "sk-openai"}
    flagged = resolve_connection(args("--url", "http://flag:1/v1", "--api-key", "bg-flag"), env)
    assert (flagged.base_url, flagged.api_key) == ("http://flag:1", "bg-flag")
    from_env = resolve_connection(args(), env)
    assert (from_env.base_url, from_env.api_key) == ("http://gw:8000", "bg-env")
    openai = resolve_connection(args(), {"OPENAI_BASE_URL": "https://gw.example/v1", "OPENAI_API_KEY": "sk-x"})
    assert (openai.base_url, openai.api_key) == ("https://gw.example", "sk-x")
    assert resolve_connection(args(), {}).base_url == DEFAULT_URL


def test_the_answer_cap_is_the_flags_in_mb_or_left_to_each_prompt() -> None:
    assert resolve_connection(args("--max-answer-mb", "2.5"), {}).max_answer_bytes == int(2.5 * 1024 * 1024)
    assert resolve_connection(args(), {}).max_answer_bytes is None


def test_an_openai_key_is_never_sent_to_a_gateway_named_another_way() -> None:
    env = {"BOLTGATE_URL": "http://gw:8000", "OPENAI_API_KEY": "sk-openai"}
    assert resolve_connection(args(), env).api_key is None
    assert resolve_connection(args("--url", "http://gw:8000"), {"OPENAI_API_KEY": "sk-openai"}).api_key is None
    assert resolve_connection(args(), {"OPENAI_API_KEY": "sk-openai"}).api_key is None


@pytest.mark.parametrize(("argv", "message"), [
    (["generate", "-o", "out"], "give one prompt or --prompts FILE"),
    (["generate", "x", "--prompts", "p.txt", "-o", "out"], "give one prompt or --prompts FILE"),
    (["generate", "--prompts", "p.txt", "--name", "fox", "-o", "out"], "--name is for a single prompt"),
    (["generate", "x", "--name", "../fox", "-o", "out"], "the prompt: name:"),
    (["generate", "x", "-o", "out", "--concurrency", "0"], "--concurrency must be at least 1"),
    (["generate", "x", "-o", "out", "--url", "ftp://gw"], "must start with http:// or https://"),
    (["generate", "x", "-o", "out", "--max-answer-mb", "0"], "--max-answer-mb must be a positive number"),
    (["generate", "x", "-o", "out", "--max-answer-mb", "nan"], "--max-answer-mb must be a positive number"),
    (["generate", "--prompts", "missing.txt", "-o", "out"], "missing.txt: no such file"),
])
def test_a_bad_command_is_refused_before_anything_is_sent(
    argv: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.txt").write_text("a fox\n")
    nowhere = [] if "--url" in argv else ["--url", "http://127.0.0.1:9"]  # nothing listens there
    assert main([*argv, *nowhere]) == EXIT_USAGE
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
