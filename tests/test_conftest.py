"""The suite's own rules: nothing from the machine's environment reaches a test, and
``-m "not e2e"`` leaves out every end-to-end test and only those."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.conftest import strip_settings_and_keys

ROOT = Path(__file__).parent.parent
pytest_plugins = ["pytester"]


def test_settings_and_key_variables_are_stripped_and_put_back_after() -> None:
    leaked = {"BOLTGATE_DEADLINE_S": "1", "BOLTGATE_API_KEYS": "{}", "RUNFLOW_API_KEY": "rf", "ACME_API_KEY": "a"}
    with pytest.MonkeyPatch.context() as machine:
        for name, value in leaked.items():
            machine.setenv(name, value)
        machine.setenv("KEEP_ME", "yes")
        with pytest.MonkeyPatch.context() as test:
            strip_settings_and_keys(test)
            assert not {name for name in os.environ if name.startswith("BOLTGATE_") or name.endswith("_API_KEY")}
            assert os.environ["KEEP_ME"] == "yes"
        assert {name: os.environ[name] for name in leaked} == leaked


def test_not_e2e_deselects_every_end_to_end_test_and_nothing_else(pytester: pytest.Pytester,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """In process: the suite's own modules are imported already, where a fresh interpreter spent
    half a minute importing torch, diffusers and LiteLLM only to collect them."""
    e2e, other = "tests/e2e", "tests/backends/vendors/test_classify.py"
    monkeypatch.chdir(ROOT)
    result = pytester.runpytest_inprocess("--collect-only", "-q", "-p", "no:cacheprovider", "-m", "not e2e", e2e, other)
    stdout = result.stdout.str()
    assert result.ret == 0, stdout + result.stderr.str()
    collected = [line for line in stdout.splitlines() if "::" in line]
    assert collected, stdout
    assert all(line.startswith(f"{other}::") for line in collected), stdout
    deselected = re.search(r"(\d+) deselected", stdout)
    assert deselected is not None and int(deselected.group(1)) > 0, stdout
