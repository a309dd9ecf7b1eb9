"""What a simulator received, kept so tests can assert on the exact wire traffic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    """Lower-cased names, as HTTP/1.1 delivers them to the app."""
    json: Any
    """The parsed JSON body, or None when there was none or it did not parse."""

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "headers": self.headers, "json": self.json}
