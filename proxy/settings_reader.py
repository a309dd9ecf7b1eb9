"""Reading the settings, every mistake told in words: the one way every command reads them.

``Settings()`` raises whatever went wrong underneath (a pydantic ``ValidationError``, a TOML
parser's error, a ``FileNotFoundError``, pydantic-settings' error for a ``BOLTGATE_*`` value it
cannot parse as JSON); ``read_settings`` turns each into one ``InvalidSettings`` whose message
names the file or variable, the setting and what is wrong with it, with no traceback.

The message goes to a terminal, CI output and logs, so it carries no secret: a client key is a
dictionary key of ``api_keys`` (its path would be the key itself), shown by its place in the
mapping, ``<key 3>`` (``proxy.key_positions`` renames it as validation fails); and the wrong value
is quoted only for settings that cannot hold a secret.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from core.errors import InvalidSettings
from proxy.key_positions import UNPLACED, is_placeholder
from proxy.settings import Settings
from proxy.settings_secrets import ENV_PREFIX

SECRET_MAPS = frozenset({"api_keys"})
"""Settings whose dictionary keys are secrets."""
SECRET_WORDS = ("token", "secret", "password", "key", "redis_url")
"""A setting whose name holds one of these may hold a secret: its value is never quoted."""


def read_settings(config: str | Path | None = None, **values: Any) -> Settings:
    """The settings from the environment over ``config`` (or ``BOLTGATE_CONFIG``), with ``values``
    (command-line flags) winning over both; ``InvalidSettings`` says what is wrong."""
    if config is not None:
        values["config"] = Path(config)
    source = str(config or os.environ.get(f"{ENV_PREFIX}CONFIG") or "the environment")
    try:
        return Settings(**values)
    except ValidationError as error:
        raise InvalidSettings(describe(error, source)) from None
    except (FileNotFoundError, IsADirectoryError, PermissionError) as error:
        raise InvalidSettings(str(error)) from None
    except tomllib.TOMLDecodeError as error:
        raise InvalidSettings(f"{source} is not valid TOML: {error}") from None
    except SettingsError as error:
        cause = f": {error.__cause__}" if error.__cause__ is not None else ""
        raise InvalidSettings(f"{error}{cause} (a {ENV_PREFIX}* variable holding JSON must be valid JSON)") from None


def describe(error: ValidationError, source: str) -> str:
    """Every problem of ``error``, one line each: where it was set, which setting, what is wrong."""
    lines = [f"invalid settings ({error.error_count()} problem{'s' if error.error_count() > 1 else ''}):"]
    for problem in error.errors(include_url=False):
        location = _location(problem["loc"])
        message = str(problem["msg"]).removeprefix("Value error, ")
        given = problem.get("input")
        quotable = problem["type"] != "missing" and not isinstance(given, dict) and not _may_be_secret(problem["loc"])
        got = f" (got {_short(given)})" if quotable else ""
        lines.append(f"- {location} [{_origin(problem['loc'], source)}]: {message}{got}")
    return "\n".join(lines)


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for index, part in enumerate(loc):
        if index and loc[index - 1] in SECRET_MAPS and not is_placeholder(part):
            part = UNPLACED  # a key no validator renamed: still never printed
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(the settings)"


def _may_be_secret(loc: tuple[int | str, ...]) -> bool:
    return any(isinstance(part, str) and any(word in part.lower() for word in SECRET_WORDS) for part in loc)


def _origin(loc: tuple[int | str, ...], source: str) -> str:
    """The variable that set the setting (``BOLTGATE_RETRY__JITTER_S``, or a JSON-valued parent
    such as ``BOLTGATE_RETRY``), when one did; else the file."""
    names: list[str] = []
    for part in loc:
        if not isinstance(part, str):
            break
        names.append(part.upper())
    for length in range(len(names), 0, -1):
        variable = ENV_PREFIX + "__".join(names[:length])
        if variable in os.environ:
            return variable
    return source


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def check_prices(settings: Settings) -> None:
    """Refuse, before serving, a catalog that cannot be read or a route it has no price for
    (``CatalogError``, ``UnknownVendor``): the same check the gateway makes at start-up, but
    told as a message instead of a failed start-up's traceback."""
    from backends.vendors.registry import price_key
    from pricing.catalog import PriceCatalog

    catalog = PriceCatalog.load(settings.pricing)
    for route in settings.enabled_routes():
        catalog.price(price_key(route.vendor))
