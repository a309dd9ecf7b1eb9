"""The README's examples, run as a newcomer runs them after ``make run`` (no keys: the simulators),
so that they cannot drift from what the gateway does.

- every ``curl`` command of a ``sh`` block is run by bash against the real gateway on loopback;
  the ``# ...`` lines under it are its output, where ``...`` stands for anything: a JSON answer
  must have exactly the keys shown and the values shown, headers the names and values shown;
- every ``python`` block is run; its closing ``# ...`` lines are what it prints;
- the TOML example must be valid and, copied as it is with no key set, leave ``make run`` on the
  simulators; ``$ boltgate prices`` must print the table shown;
- the API table lists every endpoint of the OpenAPI document and every model name served.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from core.request import MODEL_ALIASES
from proxy.cli import main
from proxy.settings import Settings
from proxy.settings_reader import read_settings
from tests.e2e.gateway_server import GatewayServer

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text()
MAKE_RUN_URL = "http://127.0.0.1:8000"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
ANY = "<<anything>>"


def blocks(language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(README) if lang == language]


def shell_examples() -> list[tuple[str, list[str]]]:
    """Each ``curl`` command (with its continuation lines) and the output lines shown under it."""
    examples: list[tuple[str, list[str]]] = []
    for block in blocks("sh"):
        lines = block.splitlines()
        index = 0
        while index < len(lines):
            if not lines[index].startswith("curl "):
                index += 1
                continue
            command = [lines[index]]
            while command[-1].endswith("\\"):
                index += 1
                command.append(lines[index])
            index += 1
            shown = []
            while index < len(lines) and lines[index].startswith("#"):
                shown.append(lines[index].removeprefix("#").strip())
                index += 1
            examples.append(("\n".join(command), shown))
    return examples


def matches(shown: Any, actual: Any) -> bool:
    """``actual`` has the shape and the values ``shown``, where ``...`` stands for anything."""
    if shown == ANY:
        return True
    if isinstance(shown, dict):
        return isinstance(actual, dict) and shown.keys() == actual.keys() and all(
            matches(value, actual[key]) for key, value in shown.items())
    if isinstance(shown, list):
        return isinstance(actual, list) and len(shown) == len(actual) and all(
            matches(item, got) for item, got in zip(shown, actual, strict=True))
    if isinstance(shown, str) and "..." in shown:
        pattern = ".*".join(re.escape(part) for part in shown.split("..."))
        return isinstance(actual, str) and re.fullmatch(pattern, actual, re.S) is not None
    return bool(shown == actual)


def shown_json(lines: list[str]) -> Any:
    """The JSON shown, ``...`` as a value standing for anything."""
    text = re.sub(r"(?<=[:\[,])\s*\.\.\.(?=\s*[,\]}])", f' "{ANY}"', " ".join(lines))
    return orjson.loads(text)


@pytest.fixture(scope="module")
def make_run_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """The gateway with ``make run``'s settings (the suite's environment has none): nothing
    configured, so the simulators serve; only its ledger lives in a directory of its own."""
    with GatewayServer(Settings(data_dir=tmp_path_factory.mktemp("make-run-data"))) as server:
        yield server


def test_the_readme_has_examples_to_run() -> None:
    assert len(shell_examples()) >= 3
    assert blocks("python") and blocks("toml")


@pytest.mark.parametrize(("command", "shown"), shell_examples(), ids=lambda value: str(value)[:40])
def test_a_curl_example_answers_what_is_shown(command: str, shown: list[str],
                                              make_run_gateway: GatewayServer) -> None:
    url = make_run_gateway.base_url
    run = subprocess.run(["bash", "-c", command.replace(MAKE_RUN_URL, url)], capture_output=True, text=True,
                         timeout=60, check=False)
    output = run.stdout.replace(url, MAKE_RUN_URL)

    assert shown, f"no output shown for: {command}"
    if shown[0].startswith("{"):
        assert matches(shown_json(shown), orjson.loads(output)), output
    else:
        headers = dict(line.split(": ", 1) for line in output.strip().replace("\r", "").splitlines())
        expected = dict(line.split(": ", 1) for line in shown)
        assert headers.keys() == expected.keys(), output
        assert all(matches(value, headers[name]) for name, value in expected.items()), output


@pytest.mark.parametrize("block", blocks("python"), ids=lambda block: block.splitlines()[-1][:40])
def test_a_python_example_prints_what_is_shown(block: str, make_run_gateway: GatewayServer,
                                               tmp_path: Path) -> None:
    lines = block.rstrip().splitlines()
    shown: list[str] = []
    while lines and lines[-1].startswith("#"):
        shown.insert(0, lines.pop().removeprefix("#").strip())
    script = tmp_path / "example.py"
    script.write_text("\n".join(lines).replace(MAKE_RUN_URL, make_run_gateway.base_url))

    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         check=False)

    assert run.returncode == 0, run.stderr
    assert shown, "the example shows no output"
    printed = run.stdout.strip().splitlines()
    assert len(printed) == len(shown) and all(matches(want, got) for want, got in zip(shown, printed, strict=True)), (
        run.stdout)


def test_the_toml_example_is_valid_and_leaves_make_run_on_the_simulators(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (example,) = blocks("toml")
    path = tmp_path / "routes.toml"
    path.write_text(example)

    settings = read_settings(path)

    assert {route.vendor for route in settings.routes} == {"callmissed", "aigateway", "runflow", "eachlabs",
                                                          "imageapi", "worker"}
    assert settings.enabled_routes() == []
    monkeypatch.setenv("CALLMISSED_API_KEY", "key")
    assert [route.vendor for route in read_settings(path).enabled_routes()] == ["callmissed"]


def test_boltgate_prices_prints_the_table_shown() -> None:
    (block,) = [block for block in blocks("sh") if block.startswith("$ boltgate prices")]
    printed = io.StringIO()

    with redirect_stdout(printed):
        assert main(["prices"]) == 0

    assert printed.getvalue().strip() == block.removeprefix("$ boltgate prices").strip()


def test_the_api_table_lists_every_endpoint_and_every_model_name(make_run_gateway: GatewayServer) -> None:
    table = README[README.index("## The API"):README.index("The OpenAPI document is generated")]
    document = httpx.get(f"{make_run_gateway.base_url}/schema/openapi.json", timeout=30).json()

    for path, operations in document["paths"].items():
        for method in operations:
            endpoint = f"{method.upper()} {path.replace('{key_id}', '{id}')}"
            assert endpoint in table, endpoint
    for name in MODEL_ALIASES:
        assert f"`{name}`" in table, name
