"""Typed reading of a vendor's JSON fields with range checks, as the vendor validates them.

Vendors differ in names, ranges and how they report a bad field, not in how a field is checked,
so checking lives here once and raises ``InvalidField``; each vendor turns that into its own
error body. ``strings=True`` reads Eachlabs' style, where every value arrives as a string.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Mapping
from typing import Any

MAX_SEED = 2**32 - 1


class InvalidField(ValueError):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


class FieldReader:
    def __init__(self, body: Any, *, prefix: str = "", strings: bool = False) -> None:
        if not isinstance(body, Mapping):
            raise InvalidField(prefix.rstrip(".") or "body", "must be a JSON object")
        self._body: Mapping[str, Any] = body
        self._prefix = prefix
        self._strings = strings

    def only(self, documented: Collection[str]) -> None:
        """Refuse a field the vendor does not document. Stricter than the vendor may be: it
        catches an adapter sending what the vendor's documentation never mentions."""
        for name in self._body:
            if name not in documented:
                raise InvalidField(self._prefix + name, "is not a documented field")

    def _raw(self, name: str) -> Any:
        value = self._body.get(name)
        if value is not None and self._strings and not isinstance(value, str):
            raise InvalidField(self._prefix + name, "must be a string")
        return value

    def text(self, name: str, *, required: bool = False, max_len: int = 4000) -> str | None:
        value = self._raw(name)
        if value is None:
            if required:
                raise InvalidField(self._prefix + name, "is required")
            return None
        if not isinstance(value, str):
            raise InvalidField(self._prefix + name, "must be a string")
        if required and not value.strip():
            raise InvalidField(self._prefix + name, "must not be empty")
        if len(value) > max_len:
            raise InvalidField(self._prefix + name, f"must be at most {max_len} characters")
        return value

    def prompt(self, name: str = "prompt", max_len: int = 4000) -> str:
        value = self.text(name, required=True, max_len=max_len)
        assert value is not None
        return value

    def integer(self, name: str, *, default: int, low: int, high: int) -> int:
        return int(self._numeric(name, default, low, high, integral=True))

    def number(self, name: str, *, default: float, low: float, high: float) -> float:
        return float(self._numeric(name, default, low, high, integral=False))

    def _numeric(self, name: str, default: float, low: float, high: float, *, integral: bool) -> float:
        what = "an integer" if integral else "a number"
        value = self._raw(name)
        if value is None:
            return default
        if isinstance(value, str) and self._strings:
            try:
                value = int(value) if integral else float(value)
            except ValueError:
                raise InvalidField(self._prefix + name, f"must be {what}") from None
        if isinstance(value, bool) or not isinstance(value, int | float) or (integral and isinstance(value, float)):
            raise InvalidField(self._prefix + name, f"must be {what}")
        if not low <= value <= high:
            raise InvalidField(self._prefix + name, f"must be between {low} and {high}")
        return value

    def seed(self, name: str = "seed") -> int:
        """The seed sent, or a random one as a vendor draws when none is given."""
        drawn = secrets.randbelow(MAX_SEED + 1)
        return self.integer(name, default=drawn, low=0, high=MAX_SEED)

    def choice(self, name: str, choices: Collection[str], *, default: str) -> str:
        value = self._raw(name)
        if value is None:
            return default
        if value not in choices:
            raise InvalidField(self._prefix + name, f"must be one of {sorted(choices)}")
        return str(value)

    def size(self, name: str = "size", *, default: str = "1024x1024", low: int, high: int) -> tuple[int, int]:
        """An OpenAI-style ``WxH`` size."""
        value = self.text(name) or default
        width, sep, height = value.partition("x")
        if not (sep and width.isdigit() and height.isdigit()):
            raise InvalidField(self._prefix + name, "must look like 1024x1024")
        sides = (int(width), int(height))
        if not all(low <= side <= high for side in sides):
            raise InvalidField(self._prefix + name, f"sides must be between {low} and {high}")
        return sides
