"""What every test shares: an environment with no boltgate setting and no vendor key in it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


def is_setting_or_key(name: str) -> bool:
    """A gateway setting (``BOLTGATE_*``) or a key variable (``<VENDOR>_API_KEY`` and the like)."""
    return name.startswith("BOLTGATE_") or name.endswith("_API_KEY")


def strip_settings_and_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if is_setting_or_key(name):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True, scope="session")
def clean_environment() -> Iterator[None]:
    """No setting or key leaks in from the machine running the tests.

    Session-wide so that module- and session-scoped servers start clean too; a test that needs a
    variable sets it with ``monkeypatch.setenv``, which puts things back after that test.
    """
    with pytest.MonkeyPatch.context() as monkeypatch:
        strip_settings_and_keys(monkeypatch)
        yield
