"""Scrubbing secrets out of what vendors say before it reaches a client or a log line.

A vendor's error body may echo the request's headers, the key included ("invalid key sk-...").
Those messages travel into the client's error answer (every failed attempt is listed) and into
warnings, so each route scrubs its own key, and anything shaped like a credential, first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[redacted]"

_SCHEME = re.compile(r"(?i)\b((?:bearer|basic|token)\s+)([A-Za-z0-9._~+/=-]{6,})")
"""An authorization scheme followed by its credential (``Bearer xyz``)."""
_FIELD = re.compile(
    r"""(?ix)\b((?:api[_-]?key|x-api-key|authorization|access[_-]?token|secret|password|token)["']?\s*[:=]\s*["']?)
    (?!bearer\b|basic\b|token\b)([A-Za-z0-9._~+/=-]{6,})"""
)
"""A key-like field name followed by its value (``"api_key": "xyz"``, ``x-api-key=xyz``)."""
_KEY_SHAPED = re.compile(r"\b(?:sk|pk|rk|key|bg)[-_][A-Za-z0-9_-]{16,}")
"""Prefixed keys as many vendors issue them (``sk-...``, ``key_...``), and the gateway's own ``bg-``."""
_MIN_SECRET = 4
_PREFIX = 8
"""A secret is recognised by its first characters, so a copy cut short (``str(body)[:200]``) is too."""


class Redactor:
    """Replaces the given secrets and credential-shaped text with ``[redacted]``."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        kept = {secret for secret in secrets if secret and len(secret) >= _MIN_SECRET}
        patterns = sorted({_pattern(secret) for secret in kept}, key=len, reverse=True)
        self._secrets = re.compile("|".join(patterns)) if patterns else None

    def scrub(self, text: str) -> str:
        if self._secrets is not None:
            text = self._secrets.sub(REDACTED, text)
        text = _SCHEME.sub(lambda match: match.group(1) + REDACTED, text)
        text = _FIELD.sub(lambda match: match.group(1) + REDACTED, text)
        return _KEY_SHAPED.sub(REDACTED, text)

    def excerpt(self, body: bytes | bytearray, limit: int = 500) -> str:
        """A body fit for a log line: decoded, scrubbed, then cut to ``limit`` characters.

        Scrubbed before it is cut, so a key straddling the cut is still recognised."""
        return self.scrub(body[: limit * 4].decode("utf-8", "replace"))[:limit]


def _pattern(secret: str) -> str:
    if len(secret) <= _PREFIX:
        return re.escape(secret)
    return re.escape(secret[:_PREFIX]) + r"[^\s\"'<>,;}]*"
