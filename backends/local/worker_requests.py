"""What the worker reads from each generate call besides the request: its token, its deadline,
and whether its client is still connected.

    Authorization: Bearer <token>   required when the worker has a token (``auth_token_env``);
                                    compared in constant time; 401 in OpenAI's envelope otherwise
                                    (``/metrics`` likewise, with its own ``metrics_token_env``)
    X-Boltgate-Timeout-S: 12.5      seconds the caller still waits (the gateway sends what is left
                                    of the request's deadline): a request still queued when it
                                    passes is dropped before it reaches the GPU
    http.disconnect                 the client left: the request is cancelled, and dropped from
                                    the queue or its batch before it runs
"""

from __future__ import annotations

import asyncio
import hmac
import math
import os
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

from core.deadline import Deadline
from core.errors import AuthenticationFailed, ClientDisconnected, InvalidRequest

TIMEOUT_HEADER = "X-Boltgate-Timeout-S"
MAX_TIMEOUT_S = 3600.0
T = TypeVar("T")


def worker_token(variable: str | None, environ: Mapping[str, str] = os.environ) -> str | None:
    """The shared token from the environment variable named by the setting (None: no token set)."""
    return (environ.get(variable) or None) if variable else None


def check_token(expected: str | None, authorization: str | None,
                what: str = "this worker needs its token") -> None:
    """Refuse (401) a call without ``Authorization: Bearer <expected>``; no check without a token.
    ``what`` starts the refusal's message (which token is missing)."""
    if expected is None:
        return
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), expected.encode()):
        raise AuthenticationFailed(f"{what}: Authorization: Bearer <token>")


def deadline_from(value: str | None) -> Deadline | None:
    """The caller's deadline from ``X-Boltgate-Timeout-S`` (None when absent); 400 when unreadable."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds <= MAX_TIMEOUT_S:  # also false for NaN
        raise InvalidRequest(f"{TIMEOUT_HEADER} must be seconds between 0 and {MAX_TIMEOUT_S:g}",
                             param=TIMEOUT_HEADER)
    return Deadline(seconds)


async def unless_disconnected(receive: Any, work: Awaitable[T]) -> T:
    """``work``'s result, or ``ClientDisconnected`` (and ``work`` cancelled) once the client hangs up.

    ``receive`` is the ASGI receive channel after the body was read: its next message is
    ``http.disconnect``, which arrives when the connection closes.
    """
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnect(receive))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
    if not task.done() or task.cancelled():
        raise ClientDisconnected("the client left before its images were generated")
    return task.result()


async def _disconnect(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
