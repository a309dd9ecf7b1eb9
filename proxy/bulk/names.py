"""Output file names: a name from a prompts file is a path component, checked, never a path.

A JSONL line saying ``"name": "../../.ssh/authorized_keys"`` must not write outside the output
directory, so a name is refused (not rewritten) unless it is a plain file stem: letters, digits,
``.``, ``_`` and ``-``, not starting with a dot (that also keeps it off the run's own dotfiles),
at most ``MAX_NAME`` characters. Default names are made from the prompt and are always safe.
"""

from __future__ import annotations

import re

MAX_NAME = 120
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
_SLUG_JUNK = re.compile(r"[^a-z0-9]+")
_WINDOWS_DEVICES = frozenset({"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
                              *(f"lpt{i}" for i in range(1, 10))})


def check_output_name(name: str) -> str:
    """``name`` if it is a safe file stem; otherwise ``ValueError`` saying why."""
    if not name:
        raise ValueError("is empty")
    if len(name) > MAX_NAME:
        raise ValueError(f"is longer than {MAX_NAME} characters")
    if "/" in name or "\\" in name or ".." in name:
        raise ValueError(f"{name!r} is a path; give a plain file name (no '/', '\\' or '..')")
    if not _SAFE_NAME.fullmatch(name):
        raise ValueError(f"{name!r} may hold only letters, digits, '.', '_' and '-', and not start with '.'")
    if name.split(".")[0].lower() in _WINDOWS_DEVICES:
        raise ValueError(f"{name!r} is a reserved device name")
    return name


def default_output_name(prompt: str, idempotency_key: str) -> str:
    """A readable, stable stem: the prompt's first words, then part of the request's key (so
    two prompts that start alike, or one prompt asked twice, never share a file)."""
    slug = _SLUG_JUNK.sub("-", prompt.lower()).strip("-")[:48].rstrip("-") or "image"
    return f"{slug}-{idempotency_key.removeprefix('bulk-')[:10]}"
