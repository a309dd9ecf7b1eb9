"""Fixtures for every test: no test writes the embedded ledger under the working tree.

The default state backend keeps keys and spend in ``var/data`` (so ``make run`` keeps them across
restarts); a test that built the app with default settings would otherwise share that file with
the next run and with every other test.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _data_dir_per_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOLTGATE_DATA_DIR", str(tmp_path / "boltgate-data"))
