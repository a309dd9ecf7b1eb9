"""The webhook signature: HMAC-SHA256 over ``timestamp + "." + body``, with the key's secret.

Sent as ``Boltgate-Signature: t=<unix seconds>,v1=<hex digest>``. A receiver checks it with
``verify_signature`` (or ``boltgate webhooks verify``), on the raw body bytes as received,
before parsing them; a timestamp older than the tolerance is refused, so a captured delivery
cannot be replayed later. The code has no gateway imports: receivers may copy or import it.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Boltgate-Signature"
DEFAULT_TOLERANCE_S = 300.0


def signature_of(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``Boltgate-Signature`` header value for ``body`` sent at ``timestamp`` (now)."""
    at = int(time.time()) if timestamp is None else timestamp
    return f"t={at},v1={signature_of(secret, at, body)}"


def verify_signature(secret: str, body: bytes, header: str, *, tolerance_s: float = DEFAULT_TOLERANCE_S,
                     now: float | None = None) -> bool:
    """True when ``header`` signs exactly ``body`` with ``secret`` and is at most ``tolerance_s``
    old (or ahead). Any ``v1=`` entry may match (several are sent while a secret rotates)."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        return False
    expected = signature_of(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
