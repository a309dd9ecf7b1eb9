"""The buffers a lean client's connections read into, kept between answers and lent out with them.

Why kept: a fresh 2 MB buffer per answer costs more than reading into it. The allocator may hand
a buffer that size out as newly mapped memory, whose first touch of each 4 KB page faults, and
it zero-fills it; copying the body out of a kept buffer into the answer's own ``bytes`` cost
6% of the gateway's CPU on a large image (perf, ``bench/overhead.py``'s large case). So a sized
body is read into a kept buffer, and that buffer *is* the answer's body (a ``bytearray``): lent,
not copied. Its base64 goes on to the client as views of it (``b64_splice``), written to the
socket by the event loop, which may hold them until the socket drains.

A kept buffer is read into again only once nothing but this pool refers to it: not the answer,
not a view of it (a ``memoryview`` keeps a reference to what it views, as does every C consumer
holding its memory through the buffer protocol), not the connection. CPython counts those
references for us (``sys.getrefcount``); while any is left the buffer is passed over and another
taken or made, so no reader ever sees its bytes change.

- ``scratch``: one buffer for heads and streamed bodies, shared by all the client's
  connections: the event loop calls ``get_buffer`` and ``buffer_updated`` back to back, and each
  call consumes what it was given before returning.
- ``take(size)``: a buffer of exactly ``size`` bytes for one sized body. Buffers are kept up to
  ``KEPT_BYTES`` in all, lent or not (past that, a burst's buffers are let go with their answers).
"""

from __future__ import annotations

import sys

SCRATCH_BYTES = 64 * 1024
"""What one read takes when no sized body is being read (as much as aiohttp reads at once)."""
KEPT_BYTES = 64 * 1024 * 1024
"""Body buffers kept, in all: 32 answers of 2 MB in flight at once."""
SMALLEST_KEPT = SCRATCH_BYTES
"""Smaller bodies get a fresh buffer: small allocations reuse memory anyway."""


class ReadBuffers:
    def __init__(self, kept_bytes: int = KEPT_BYTES) -> None:
        self.scratch = bytearray(SCRATCH_BYTES)
        self._kept_bytes = kept_bytes
        self._kept: list[bytearray] = []

    def take(self, size: int) -> bytearray:
        """A buffer of exactly ``size`` bytes (its content is whatever it held before): a kept one
        nothing else refers to and that holds ``size`` without reallocating, or a new one."""
        if size >= SMALLEST_KEPT:
            for index in range(len(self._kept) - 1, -1, -1):  # the most recently made first
                if size < self._kept[index].__alloc__() <= 2 * size and _only_kept(self._kept, index):
                    return _resized(self._kept[index], size)
        buffer = bytearray(size)
        if size >= SMALLEST_KEPT and sum(kept.__alloc__() for kept in self._kept) + size <= self._kept_bytes:
            self._kept.append(buffer)
        return buffer

    def held(self) -> int:
        """How many kept buffers something else still refers to (an answer, a view, a read)."""
        return sum(1 for index in range(len(self._kept)) if not _only_kept(self._kept, index))


def _references(kept: list[bytearray], index: int) -> int:
    return sys.getrefcount(kept[index])


_KEPT_ONLY = _references([bytearray()], 0)
"""What ``_references`` counts for a buffer only its list refers to (the interpreter's own
temporary references included, measured rather than assumed)."""


def _only_kept(kept: list[bytearray], index: int) -> bool:
    return _references(kept, index) <= _KEPT_ONLY


def _resized(buffer: bytearray, size: int) -> bytearray:
    """``buffer`` cut or grown to ``size``, which it holds without reallocating (CPython's
    ``bytearray`` keeps its allocation from half of it up; a view of it would make this raise
    ``BufferError``, and none can be alive here)."""
    if size < len(buffer):
        del buffer[size:]
    elif size > len(buffer):
        buffer += bytes(size - len(buffer))
    return buffer
