"""State writes that may fail without failing the request that asked for them.

Giving back a claim, a lease, a reservation or a concurrency slot, or remembering an answer for
replays: each has a TTL or lease that ends it if the write is lost, so a state store that is down
must not turn an answer into another error. The failure is logged, not raised.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from core.errors import StateUnavailable

log = logging.getLogger(__name__)


async def quietly(work: Awaitable[object], what: str) -> None:
    """Await ``work``; a ``StateUnavailable`` is logged ("could not ``what``") and swallowed."""
    try:
        await work
    except StateUnavailable as error:
        log.warning("could not %s: %s", what, error.message)
