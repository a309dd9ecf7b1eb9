"""What a client key's name may hold: one rule for every key, however it came to be (created
through the admin API, ``proxy.api.admin``, or written in the settings' ``api_keys``).

A key's name is written into log lines, the charge log's CSV export and metric labels, where a
control character or a line separator forges or breaks a line; a name from a config file is no
safer than one sent to the API, so both are refused by the same check, with the same words.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, Field

LINE_BREAKING = frozenset("\u2028\u2029")
"""Unicode's line and paragraph separators: not control characters (category Cc), but they end a
line for many log readers all the same."""
NAME_PATTERN = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]+$"
"""``printable_name``'s rule as a JSON Schema pattern states it (category Cc is exactly
U+0000-001F and U+007F-009F); the validator enforces it, with a message that says why."""


def printable_name(name: str) -> str:
    """Refuse a key name with a control character or a line separator: names reach log lines, CSV
    exports and metric labels, where one forges or breaks a line."""
    if any(unicodedata.category(char) == "Cc" or char in LINE_BREAKING for char in name):
        raise ValueError("a key name may not hold a control character (a newline, a tab, NUL...)")
    return name


PrintableName = Annotated[str, Field(json_schema_extra={"pattern": NAME_PATTERN}), AfterValidator(printable_name)]
"""A key's name as pydantic reads it: refused by ``printable_name``, documented by ``NAME_PATTERN``."""
