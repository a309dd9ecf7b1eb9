"""The cyclic garbage collector held off, to tell what reference counting alone frees."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_off() -> Iterator[None]:
    """No collection runs in the block: an object freed in it was freed by reference counting,
    so it was in no reference cycle."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
