"""The Makefile's install steps, run for real in a scratch copy with a stand-in pip (nothing is installed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """The Makefile and pyproject.toml beside a venv whose pip only records that it ran."""
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text("#!/bin/sh\n")
    (bin_dir / "pip").write_text(f'#!/bin/sh\necho "$@" >> "{tmp_path}/pip.log"\n')
    for tool in ("python", "pip"):
        (bin_dir / tool).chmod(0o755)
    return tmp_path


def make(directory: Path, *targets: str) -> list[str]:
    done = subprocess.run(["make", "--no-print-directory", *targets], cwd=directory, check=True,
                          capture_output=True, text=True)
    return done.stdout.splitlines()


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_run_after_the_dev_install_installs_nothing_again(scratch: Path) -> None:
    """``make test`` installs the dev extras (a superset of ``make run``'s): a later ``make run``
    must not reinstall, which also needs the package index (offline, it would fail)."""
    make(scratch, "install-dev")
    installs = (scratch / "pip.log").read_text().splitlines()

    planned = make(scratch, "-n", "run")

    assert any("-e .[dev,local]" in line for line in installs)
    assert planned == [".venv/bin/boltgate serve --host 127.0.0.1 --port 8000"]
