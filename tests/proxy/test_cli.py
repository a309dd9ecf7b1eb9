"""``boltgate config check FILE``: validate a routes file and print the routes as resolved."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.cli import build_parser, main

ROUTES = """
deadline_s = 25

[[routes]]
vendor = "eachlabs"
priority = 20

[[routes]]
vendor = "runflow"
priority = 10
weight = 2
timeout_s = 12
max_attempts = 2
regions = [{ name = "eu", base_url = "https://eu.runflow.example" }]

[[routes]]
vendor = "imageapi"
enabled = false
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "routes.toml"
    path.write_text(text)
    return str(path)


def test_a_valid_file_prints_the_resolved_routes_by_priority(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNFLOW_API_KEY", "rf-secret")
    path = write(tmp_path, ROUTES)

    assert main(["config", "check", path]) == 0

    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"{path}: valid; policy=priority, deadline=25.0s, state=sqlite"
    assert lines[1] == ("- runflow: priority 10, weight 2.0, timeout 12.0s, 2 attempts, "
                        "key $RUNFLOW_API_KEY: enabled")
    assert lines[2] == "    eu: https://eu.runflow.example"
    assert lines[3].startswith("- eachlabs: priority 20")
    assert lines[3].endswith("key $EACHLABS_API_KEY: disabled (set EACHLABS_API_KEY)")
    assert lines[4] == "    default: https://api.eachlabs.ai"
    assert lines[5].endswith("disabled in the file")
    assert lines[6] == "    default: https://imageapi.org"
    assert "rf-secret" not in out
    assert "simulators" not in out


def test_with_no_route_enabled_it_says_the_simulators_would_serve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "check", write(tmp_path, ROUTES)]) == 0

    assert "no route is enabled: `boltgate serve` would use the built-in vendor simulators" in capsys.readouterr().out


@pytest.mark.parametrize("text", [
    '[[routes]]\nvendor = "dalle"\n',
    '[[routes]]\nvendor = "worker"\n',
    "this is = = not toml",
])
def test_an_invalid_file_exits_1_and_says_why(text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, text)

    assert main(["config", "check", path]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"{path}: invalid\n")


def test_a_missing_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "missing.toml")

    assert main(["config", "check", missing]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_the_file_argument_wins_over_boltgate_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other.toml"
    other.write_text("deadline_s = 99\n")
    monkeypatch.setenv("BOLTGATE_CONFIG", str(other))

    assert main(["config", "check", write(tmp_path, ROUTES)]) == 0
    assert "deadline=25.0s" in capsys.readouterr().out


def test_config_needs_a_subcommand() -> None:
    with pytest.raises(SystemExit) as raised:
        build_parser().parse_args(["config"])
    assert raised.value.code == 2


@pytest.mark.parametrize("keys", [
    '{"bg-supersecret-123": {"budget_credits": "lots"}}',
    '{"bg-supersecret-123": {"budget_credits": "1e999999"}}',
    '{"bg-supersecret-123": "not a policy"}',
])
def test_a_bad_setting_at_start_never_prints_a_client_key(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str], keys: str) -> None:
    monkeypatch.setenv("BOLTGATE_API_KEYS", keys)
    assert main(["serve", "--port", "0"]) == 2
    printed = capsys.readouterr()
    assert "supersecret" not in printed.out + printed.err
    assert "api_keys.<key 1>" in printed.err


def test_a_key_name_with_a_line_break_in_the_settings_is_refused_naming_the_key_entry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The admin API's rule for names, applied to the keys the settings declare: a forged log or
    CSV line is refused as the settings are read (``config check`` here; ``serve`` reads them the
    same way), the entry named without its secret key."""
    monkeypatch.setenv("BOLTGATE_API_KEYS", '{"bg-fine-key": {"name": "ok"}, '
                                            '"bg-supersecret-123": {"name": "team\\nFORGED line"}}')
    config = tmp_path / "boltgate.toml"
    config.write_text('routing_policy = "cheapest"\n')
    assert main(["config", "check", str(config)]) == 1
    err = capsys.readouterr().err
    assert ("- api_keys.<key 2>.name [BOLTGATE_API_KEYS]: a key name may not hold a control character "
            "(a newline, a tab, NUL...)") in err
    assert "supersecret" not in err and "FORGED" not in err


@pytest.mark.parametrize("keys", [
    '{"bg-first-1": {"name": "aqx"}, "bg-second-2": {"name": "bqx"}, "bg-supersecret-3": {"name": "gqx\\n"}}',
    '{"bg-first-1": {}, "bg-second-2": {"budget_credits": 5}, "bg-supersecret-3": {"budget_credits": "lots"}}',
    '{"bg-first-1": {}, "bg-second-2": {}, "bg-supersecret-3": "not a policy"}',
])
def test_a_bad_key_is_named_by_its_place_among_all_the_keys(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], keys: str) -> None:
    """Only the third of three keys is wrong: the message says the third (counting the good keys
    too, as the operator sees them written), and still prints no key and no name."""
    monkeypatch.setenv("BOLTGATE_API_KEYS", keys)
    assert main(["prices"]) == 2
    err = capsys.readouterr().err
    assert "- api_keys.<key 3>" in err
    assert "<key 1>" not in err
    assert "bg-" not in err and "qx" not in err


def test_keys_wrong_apart_are_each_named_by_their_own_place(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("BOLTGATE_API_KEYS", '{"bg-a": {"budget_credits": "lots"}, "bg-b": {}, '
                                            '"bg-c": {"name": "x", "budget_credits": "lots"}, "bg-d": {"extra": 1}}')
    assert main(["prices"]) == 2
    err = capsys.readouterr().err
    assert "- api_keys.<key 1>.budget_credits" in err
    assert "- api_keys.<key 3>.budget_credits" in err
    assert "- api_keys.<key 4>.extra" in err
    assert "<key 2>" not in err and "bg-" not in err


def test_vendors_prints_the_real_limits_and_what_is_confirmed_or_assumed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vendors"]) == 0
    out = capsys.readouterr().out
    assert "| `eachlabs` | 1-10 | 256-1280 | 1-4 |" in out
    assert "| `runflow` | no public cancel; the admin cancel neither stops nor refunds a run |" in out
    assert "docs.runflow.io: Guides > Cancel a run" in out
    assert "**assumed**" in out


# --- friendly errors wherever the settings are read ----------------------------------------------


@pytest.mark.parametrize("command", [["serve", "--config"], ["prices", "--config"]])
def test_a_file_that_is_not_toml_is_one_message_not_a_traceback(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "this is = = not toml")

    assert main([*command, path]) == 2

    err = capsys.readouterr().err
    assert err.startswith(f"boltgate: {path} is not valid TOML: ")
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_a_directory_is_called_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--config", str(tmp_path)]) == 2
    assert main(["config", "check", str(tmp_path)]) == 1

    err = capsys.readouterr().err
    assert err.count("is a directory") == 2
    assert "does not exist" not in err


@pytest.mark.parametrize(("variable", "value", "named"), [
    ("BOLTGATE_PORT", "eighty", "port [BOLTGATE_PORT]"),
    ("BOLTGATE_RETRY__JITTER_S", "-1", "retry.jitter_s [BOLTGATE_RETRY__JITTER_S]"),
    ("BOLTGATE_LOG_LEVEL", "loud", "log_level [BOLTGATE_LOG_LEVEL]"),
    ("BOLTGATE_API_KEYS", "{not json", "api_keys"),
])
def test_a_bad_environment_value_is_one_message_naming_the_variable(
    variable: str, value: str, named: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)

    assert main(["prices"]) == 2

    err = capsys.readouterr().err
    assert err.startswith("boltgate: ")
    assert named in err
    assert "Traceback" not in err


def test_a_typo_in_a_routes_options_is_refused_naming_what_the_vendor_takes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, '[[routes]]\nvendor = "eachlabs"\noptions = { modle = "x", version = "1" }\n')

    assert main(["config", "check", path]) == 1

    err = capsys.readouterr().err
    assert "- routes[0]" in err
    assert ("unknown option 'modle' for eachlabs: it takes auth_scheme, image_field, model, strength_field, "
            "version") in err


def test_the_help_is_plain_text() -> None:
    parser = build_parser()

    text = parser.format_help()

    assert "``" not in text
    assert "boltgate serve --config routes.toml" in text
    serve = parser._subparsers._group_actions[0].choices["serve"].format_help()  # type: ignore[union-attr]
    assert "--log-level" in serve and "--public-base-url" in serve


def test_a_settings_error_shows_no_client_key_and_no_secret_value(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOLTGATE_API_KEYS", '{"bg-secret-key-123": {"name": "t", "budget_credits": "bg-other"}}')

    assert main(["prices"]) == 2

    err = capsys.readouterr().err
    assert "api_keys.<key 1>.budget_credits [BOLTGATE_API_KEYS]: Input should be a valid decimal" in err
    assert "bg-secret-key-123" not in err and "bg-other" not in err
