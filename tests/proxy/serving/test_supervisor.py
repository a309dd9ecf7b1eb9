"""``boltgate serve --workers N``'s supervisor: a port it cannot listen on is refused before it
makes anything (no metrics directory left in the temporary directory, no socket left open)."""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path

import pytest

from proxy.serving.supervisor import MULTIPROC_DIR_VARIABLE, Supervisor


def test_a_taken_port_leaves_no_metrics_directory_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv(MULTIPROC_DIR_VARIABLE, raising=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            Supervisor({}, "127.0.0.1", port, workers=2, drain_s=1.0).run()
    assert list(tmp_path.iterdir()) == []
