"""The output directory: images written whole or not at all, and the run's manifest.

A prompt counts as done when every one of its files exists, so an image is written to a hidden
temporary file in the same directory, flushed to disk and renamed over its name: a run killed
mid-write leaves a ``.part`` file, never a half image under a done name.

The manifest (``MANIFEST_NAME``, JSON lines, appended one record per finished prompt) says what
each prompt produced: its files, cost, vendor, latency, tries, or its error. A line cut off by a
kill is skipped when read back.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

MANIFEST_NAME = ".boltgate-manifest.jsonl"


def write_atomically(directory: Path, name: str, data: bytes) -> Path:
    """Write ``data`` to ``directory/name`` so that the name never holds a partial file."""
    final = directory / name
    if final.resolve().parent != directory.resolve():  # names are checked upstream; this is the last guard
        raise ValueError(f"{name!r} would be written outside {directory}")
    partial = directory / f".{name}.{uuid.uuid4().hex[:8]}.part"
    try:
        with open(partial, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, final)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return final


class Manifest:
    """Records appended to ``MANIFEST_NAME`` in the output directory."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / MANIFEST_NAME
        self._tail_checked = False

    def _ends_cut(self) -> bool:
        """Whether an earlier run was killed mid-line (the next record must start a new line)."""
        try:
            with open(self.path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                if handle.tell() == 0:
                    return False
                handle.seek(-1, os.SEEK_END)
                return handle.read(1) != b"\n"
        except FileNotFoundError:
            return False

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        if not self._tail_checked:
            self._tail_checked = True
            if self._ends_cut():
                line = "\n" + line
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def records(self) -> list[dict[str, Any]]:
        """Every whole record, oldest first."""
        if not self.path.exists():
            return []
        found = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                found.append(record)
        return found
