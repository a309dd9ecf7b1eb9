"""Partial images of a request still being generated: what a streaming client sees form.

The gateway's streaming door (``stream: true`` with ``partial_images`` 1-3) opens a
``PreviewSink`` and makes it the request's current sink for the time the request is served; a
backend that can show its progress (the in-process pipeline) looks it up with
``current_previews()`` and offers it encoded images as its steps finish. Every other backend
never looks, and its client gets the finished image alone.

It travels as a context variable, like a deadline that only one kind of backend reads: the
router, its retries and failover, and every backend in between stay as they are, and a request
without a sink costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol

MAX_PARTIAL_IMAGES = 3
"""OpenAI's limit on ``partial_images``."""


class PreviewSink(Protocol):
    """Receives a request's partial images, in the order they were made, on the event loop."""

    @property
    def wanted(self) -> int:
        """How many partial images the client asked for (1 to ``MAX_PARTIAL_IMAGES``)."""
        ...

    def offer(self, image: bytes) -> None:
        """One partial image, encoded in the request's output format; extra ones are dropped."""
        ...


_CURRENT: ContextVar[PreviewSink | None] = ContextVar("boltgate_previews", default=None)


def current_previews() -> PreviewSink | None:
    """The sink of the request being served in this task, or None (nobody watches)."""
    return _CURRENT.get()


@contextmanager
def previews_to(sink: PreviewSink | None) -> Iterator[None]:
    """Make ``sink`` the current sink for the work inside the block (and the tasks it starts)."""
    token = _CURRENT.set(sink)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def preview_steps(steps: int, wanted: int) -> tuple[int, ...]:
    """After which of ``steps`` denoising steps to show a partial image: ``wanted`` of them,
    spread evenly, never after the last step (that one is the finished image). Fewer when the
    request has fewer steps than that (a 1-step request has none)."""
    chosen = {round(index * steps / (wanted + 1)) for index in range(1, wanted + 1)}
    return tuple(sorted(step for step in chosen if 1 <= step < steps))
