"""A piece of an answer sent from an open file with ``sendfile(2)``: the kernel copies the file's
pages to the socket, and the bytes never pass through the process (issue 17: a downloaded image
is neither read into memory nor copied by Python).

uvloop's transports offer no ``sendfile`` (asyncio's ``loop.sendfile`` is not implemented there),
and the transport owns the socket's readiness callbacks, so the file is sent beside it, in turns:

- while the transport has nothing buffered, ``os.sendfile`` writes to its socket directly, as
  much as the socket takes at once (the order of bytes on the wire is kept: nothing of the
  transport's is waiting);
- when the socket is full, the next piece (``PIECE_BYTES``) is read and handed to the transport,
  which writes it once the client has read enough; with the transport's high-water mark at 0
  that buffered piece pauses writing, and the send waits (``flow.drain``) until it is written,
  then goes on with ``sendfile``. So a slow client costs one small copy per time its socket
  fills, and a client that stops reading is cut by the guarded protocol's send timeout, which
  watches that piece like any buffered answer.

Where the socket is not a plain one the process owns (TLS, a test server's transport), the whole
file goes through the transport piece by piece, as copies.

If the file turns out shorter than the answer's ``content-length`` said (cut after it was
opened), the answer cannot be completed: the connection is aborted, and the client sees it end
early rather than wait.

The kernel reads the file's pages on the event loop's thread (as nginx's ``sendfile`` does
without its thread pool): immediate for an image written minutes ago to a local disk, in the
page cache; on a network volume a page not cached would hold the loop while it is fetched.
"""

from __future__ import annotations

import asyncio
import errno
import os
from dataclasses import dataclass
from typing import Any, Protocol

PIECE_BYTES = 64 * 1024
"""What is read and buffered each time the socket is full."""
CLIENT_GONE = frozenset({errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.ESHUTDOWN})
"""What ``sendfile`` answers when the client has left: the connection is cut. Any other error
(a file system that cannot be read by ``sendfile``) sends the rest as pieces instead."""


@dataclass(frozen=True, slots=True)
class FilePart:
    """``count`` bytes of ``fd`` from ``offset``, in a whole answer's parts (``one_write.PARTS``).
    Its length is what uvicorn counts against the answer's ``content-length``."""

    fd: int
    offset: int
    count: int

    def __len__(self) -> int:
        return self.count


class Flow(Protocol):
    """uvicorn's flow control on the connection: ``drain`` returns once writing is not paused."""

    async def drain(self) -> None: ...


async def send_file(transport: asyncio.Transport, flow: Flow, part: FilePart) -> None:
    """Send ``part`` on ``transport`` after what was written to it before; returns when every byte
    is written or buffered, or the connection is gone (aborted here if the file ran short)."""
    socket_fd = _plain_socket_fd(transport)
    offset, end = part.offset, part.offset + part.count
    low, high = transport.get_write_buffer_limits()
    transport.set_write_buffer_limits(high=0, low=0)  # a buffered piece pauses writing until it is out
    try:
        while offset < end:
            if transport.is_closing():
                return
            if socket_fd is not None and transport.get_write_buffer_size() == 0:
                try:
                    sent = os.sendfile(socket_fd, part.fd, offset, end - offset)
                except BlockingIOError:  # the socket is full: the next piece waits in the transport
                    pass
                except OSError as error:
                    if error.errno in CLIENT_GONE:
                        transport.abort()
                        return
                    socket_fd = None  # a file system sendfile cannot read (EINVAL...): pieces from here
                else:
                    if sent == 0:  # the file ends before the answer does
                        transport.abort()
                        return
                    offset += sent
                    continue
            piece = os.pread(part.fd, min(PIECE_BYTES, end - offset), offset)
            if not piece:
                transport.abort()
                return
            offset += len(piece)
            transport.write(piece)
            await flow.drain()
    finally:
        if not transport.is_closing():
            transport.set_write_buffer_limits(high=high, low=low)


def _plain_socket_fd(transport: asyncio.Transport) -> int | None:
    """The descriptor of the transport's socket, if bytes written there are the bytes the client
    gets: not under TLS (its socket carries records, not the answer)."""
    if not hasattr(os, "sendfile") or transport.get_extra_info("sslcontext") is not None \
            or transport.get_extra_info("ssl_object") is not None:
        return None
    sock: Any = transport.get_extra_info("socket")
    fileno = getattr(sock, "fileno", None)
    return fileno() if callable(fileno) else None
