"""The buffers a lean client's connections read into, kept between answers.

Why kept: a fresh 2 MB buffer per answer costs more than reading into it. The allocator hands a
buffer that size out as newly mapped memory, and the first touch of each 4 KB page faults (on
this VM, about 1 ms for a 2 MB answer, as much as the rest of the client). A buffer that was
read into before is already mapped. So a sized body is read into a kept buffer and copied out
once, into the ``bytes`` the answer carries.

- ``scratch``: one buffer for heads and streamed bodies, shared by all the client's
  connections: the event loop calls ``get_buffer`` and ``buffer_updated`` back to back, and each
  call consumes what it was given before returning.
- ``take(size)``/``give_back``: a buffer of at least ``size`` bytes for one sized body, while it
  arrives. At most ``KEPT_BYTES`` are kept idle (a burst's worth of large answers is let go).
"""

from __future__ import annotations

SCRATCH_BYTES = 64 * 1024
"""What one read takes when no sized body is being read (as much as aiohttp reads at once)."""
KEPT_BYTES = 64 * 1024 * 1024
"""Idle body buffers kept, in all: 32 answers of 2 MB in flight at once."""
SMALLEST_KEPT = SCRATCH_BYTES
"""Smaller bodies get a fresh buffer: small allocations reuse memory anyway."""


class ReadBuffers:
    def __init__(self, kept_bytes: int = KEPT_BYTES) -> None:
        self.scratch = bytearray(SCRATCH_BYTES)
        self._kept_bytes = kept_bytes
        self._idle: list[bytearray] = []
        self._idle_bytes = 0

    def take(self, size: int) -> bytearray:
        """A buffer of at least ``size`` bytes (its content is whatever it held before)."""
        if size >= SMALLEST_KEPT:
            for index in range(len(self._idle) - 1, -1, -1):  # the most recently used first
                if len(self._idle[index]) >= size:
                    buffer = self._idle.pop(index)
                    self._idle_bytes -= len(buffer)
                    return buffer
        return bytearray(size)

    def give_back(self, buffer: bytearray) -> None:
        size = len(buffer)
        if size >= SMALLEST_KEPT and self._idle_bytes + size <= self._kept_bytes:
            self._idle.append(buffer)
            self._idle_bytes += size
