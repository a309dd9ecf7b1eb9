"""``boltgate serve --workers N``'s supervisor leaves nothing behind in the temporary directory:
the metrics directory of a supervisor killed outright is removed by the next one. (A port it
cannot listen on is refused before anything is made: ``tests/e2e/test_serve_command.py``.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from proxy.serving.supervisor import (
    METRICS_DIR_PREFIX,
    MULTIPROC_DIR_VARIABLE,
    prepare_metrics_dir,
    remove_abandoned_metrics_dirs,
)

ROOT = Path(__file__).parents[3]


def test_the_metrics_directory_of_a_supervisor_killed_outright_is_removed_by_the_next(tmp_path: Path) -> None:
    """A container killed outright (an OOM kill) leaves its supervisor's directory in the pod's
    /tmp, which outlives it; the next supervisor removes it, never a running one's."""
    started = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from proxy.serving.supervisor import prepare_metrics_dir\n"
         "print(prepare_metrics_dir()[0], flush=True)\n"
         "time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(ROOT)},
    )
    try:
        assert started.stdout is not None
        killed = Path(started.stdout.readline().strip())
        (killed / "counter_123.db").write_bytes(b"\0" * 4096)  # a worker's values
        remove_abandoned_metrics_dirs(tmp_path)
        assert killed.exists()  # its supervisor still runs
    finally:
        started.send_signal(signal.SIGKILL)
        started.wait()
    older = tmp_path / f"{METRICS_DIR_PREFIX}from-an-older-version"
    older.mkdir()

    remove_abandoned_metrics_dirs(tmp_path)

    assert not killed.exists()
    assert older.exists()  # no lock to tell whether its supervisor runs: left alone


def test_a_supervisors_own_metrics_directory_is_never_taken_for_an_abandoned_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv(MULTIPROC_DIR_VARIABLE, raising=False)
    mine, made = prepare_metrics_dir()
    assert made
    remove_abandoned_metrics_dirs(tmp_path)
    assert mine.is_dir()
