"""One access line per request, on the ``boltgate.access`` logger.

The request-id middleware (``proxy.api.telemetry``) opens an ``AccessRecord`` in the ASGI scope;
the image handlers add who asked (``user``) and what (the prompt), the error handler the error's
code, and the middleware writes the line when the answer has gone, with how it was served
(backend, region, attempts and cost, from the ``x-boltgate-*`` headers) and how long it took.
The prompt is written only with ``log_prompts`` set: prompts may be personal data. Probes
(``/healthz``, ``/readyz``, ``/metrics``) are logged at DEBUG, so that they do not drown the rest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from core.logs import FIELDS

log = logging.getLogger("boltgate.access")

SCOPE_KEY = "boltgate.access"
"""Where the record lives in the ASGI scope."""
PROBES = frozenset({"/healthz", "/readyz", "/metrics"})
SERVED_HEADERS = {
    b"x-boltgate-backend": "backend",
    b"x-boltgate-region": "region",
    b"x-boltgate-attempts": "attempts",
    b"x-boltgate-cost-usd": "cost_usd",
}


@dataclass(slots=True)
class AccessRecord:
    method: str
    path: str
    request_id: str
    started: float = field(default_factory=time.monotonic)
    status: int = 500
    served: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    prompt: str | None = None
    error: str | None = None

    def read_headers(self, headers: Iterable[tuple[bytes, bytes]]) -> None:
        """Take how the request was served from the answer's ``x-boltgate-*`` headers."""
        for name, value in headers:
            if (known := SERVED_HEADERS.get(name)) is not None:
                self.served[known] = value.decode("latin-1")


def record_of(scope: Any) -> AccessRecord | None:
    """The scope's access record (None outside the middleware, as in a bare test app)."""
    record = scope.get(SCOPE_KEY)
    return record if isinstance(record, AccessRecord) else None


def write(record: AccessRecord, *, log_prompts: bool) -> None:
    level = logging.DEBUG if record.path in PROBES else logging.INFO
    if not log.isEnabledFor(level):
        return
    fields: dict[str, Any] = {
        "status": record.status, "request_id": record.request_id,
        "latency_ms": round((time.monotonic() - record.started) * 1000, 1), **record.served,
        "error": record.error, "user": record.user,
    }
    if log_prompts:
        fields["prompt"] = record.prompt
    log.log(level, "%s %s", record.method, record.path, extra={FIELDS: fields})
