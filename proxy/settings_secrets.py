"""Secrets come from the environment, never from the settings file.

The TOML file is meant to be committed, reviewed and shipped (the Helm chart mounts it from a
ConfigMap): a client key, a token or a password written in it travels with it. Each route names
the *variable* that holds its vendor key; the gateway's own secrets are refused in the file, each
with the variable that takes it instead, before anything else is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from core.errors import InvalidSettings

ENV_PREFIX = "BOLTGATE_"
"""Every setting's environment variable starts with it (``Settings``' ``env_prefix``)."""

SECRET_SETTINGS: tuple[tuple[str, ...], ...] = (
    ("api_keys",),
    ("admin_token",),
    ("metrics_token",),
    ("jobs", "webhook_root_secret"),
)
"""Settings whose values (or, for ``api_keys``, whose names) are secrets."""


def variable(path: tuple[str, ...]) -> str:
    """The environment variable of a setting: ``("jobs", "webhook_root_secret")`` is
    ``BOLTGATE_JOBS__WEBHOOK_ROOT_SECRET``."""
    return ENV_PREFIX + "__".join(part.upper() for part in path)


def refuse_secrets(data: Mapping[str, Any], file: Path) -> None:
    """Raise ``InvalidSettings`` when ``data`` (the file's settings) holds a secret: the message names
    each one and the variable that takes it, never its value."""
    problems = [f"{'.'.join(path)}: set {variable(path)} instead"
                for path in SECRET_SETTINGS if _holds(data, path)]
    if _has_password(data.get("redis_url")):
        problems.append(f"redis_url carries a password: set {variable(('redis_url',))} instead")
    if problems:
        listed = "\n".join(f"- {problem}" for problem in problems)
        raise InvalidSettings(f"{file} holds secrets, which are read from the environment only:\n{listed}")


def _holds(data: Mapping[str, Any], path: tuple[str, ...]) -> bool:
    value: Any = data
    for part in path:
        if not isinstance(value, Mapping) or part not in value:
            return False
        value = value[part]
    return True


def _has_password(url: object) -> bool:
    if not isinstance(url, str):
        return False
    try:
        return urlsplit(url).password is not None
    except ValueError:  # not a URL at all: the setting's own validation says so
        return False
