"""What every test shares: an environment with no boltgate setting and no vendor key in it, an
embedded ledger of its own, and the logging it found (a test that runs a command configures the
process's logging, whose handler would outlive the test's captured stream).

The default state backend keeps keys and spend in ``var/data`` (so ``make run`` keeps them across
restarts); a test that built the app with default settings would otherwise share that file with
the next run and with every other test.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.logs import UVICORN_LOGGERS
from core.state.sqlite_database import DATABASE_NAME
from proxy.settings import Settings

WORKING_TREE_LEDGER = Path(__file__).resolve().parents[1] / Settings.model_fields["data_dir"].default / DATABASE_NAME


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


@pytest.fixture(autouse=True)
def _data_dir_per_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOLTGATE_DATA_DIR", str(tmp_path / "boltgate-data"))


@pytest.fixture(autouse=True, scope="session")
def _no_test_writes_the_working_trees_ledger() -> Iterator[None]:
    """A fixture wider than a test (module, session) builds its app before the per-test data dir
    is set: it must choose a state backend itself, or it shares ``var/data`` with `make run`."""
    existed = WORKING_TREE_LEDGER.exists()
    yield
    assert existed or not WORKING_TREE_LEDGER.exists(), f"a test wrote {WORKING_TREE_LEDGER}"


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in UVICORN_LOGGERS)]
    saved = [(logger, logger.handlers[:], logger.level, logger.propagate) for logger in loggers]
    yield
    logging.captureWarnings(False)
    for logger, handlers, level, propagate in saved:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
