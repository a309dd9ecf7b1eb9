"""A file part of an answer (``proxy.serving.file_part``) on a transport whose socket this process
cannot write to directly (TLS, a test's transport): sent through the transport piece by piece,
each piece written before the next is read. ``sendfile`` on a real socket is specified end to end
in ``tests/e2e/test_image_downloads.py``."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from proxy.serving.file_part import PIECE_BYTES, FilePart, send_file

DATA = bytes(range(256)) * (PIECE_BYTES // 256 * 3 + 7)  # three pieces and a bit


class PieceTransport:
    """A transport with no socket: records what is written and the buffer limits it is given."""

    def __init__(self, *, extra: dict[str, Any] | None = None) -> None:
        self.written: list[bytes] = []
        self.limits = (16 * 1024, 64 * 1024)
        self.limits_seen: list[tuple[int, int]] = []
        self.aborted = False
        self.extra = extra or {}

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.extra.get(name, default)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self.limits

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.limits = (low or 0, high or 0)
        self.limits_seen.append(self.limits)

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self.aborted

    def abort(self) -> None:
        self.aborted = True


class Flow:
    """Counts the waits for the buffered piece to be written."""

    def __init__(self) -> None:
        self.drains = 0

    async def drain(self) -> None:
        self.drains += 1


@pytest.fixture
def image_fd(tmp_path: Path) -> Iterator[int]:
    path = tmp_path / "image"
    path.write_bytes(DATA)
    fd = os.open(path, os.O_RDONLY)
    yield fd
    os.close(fd)


async def test_without_a_socket_the_file_goes_through_the_transport_piece_by_piece(image_fd: int) -> None:
    transport, flow = PieceTransport(), Flow()

    await send_file(transport, flow, FilePart(image_fd, 0, len(DATA)))  # type: ignore[arg-type]

    assert b"".join(transport.written) == DATA
    assert max(len(piece) for piece in transport.written) == PIECE_BYTES
    assert flow.drains == len(transport.written)  # each piece written before the next is read
    assert transport.limits == (16 * 1024, 64 * 1024)  # the transport's own limits back after
    assert transport.limits_seen[0] == (0, 0)  # a buffered piece paused writing while the file was sent


async def test_a_part_of_the_file_is_sent_from_its_offset(image_fd: int) -> None:
    transport = PieceTransport()

    await send_file(transport, Flow(), FilePart(image_fd, 1000, 5000))  # type: ignore[arg-type]

    assert b"".join(transport.written) == DATA[1000:6000]


async def test_under_tls_the_socket_is_never_written_directly(image_fd: int) -> None:
    class Socket:
        def fileno(self) -> int:
            raise AssertionError("the TLS transport's socket was written to")

    transport = PieceTransport(extra={"socket": Socket(), "ssl_object": object()})

    await send_file(transport, Flow(), FilePart(image_fd, 0, len(DATA)))  # type: ignore[arg-type]

    assert b"".join(transport.written) == DATA


async def test_a_file_shorter_than_the_answer_aborts_the_connection(image_fd: int) -> None:
    transport = PieceTransport()

    await send_file(transport, Flow(), FilePart(image_fd, 0, len(DATA) + 10))  # type: ignore[arg-type]

    assert transport.aborted
    assert b"".join(transport.written) == DATA  # all the file had, then the connection is cut


async def test_nothing_is_sent_once_the_connection_is_closing(image_fd: int) -> None:
    transport = PieceTransport()
    transport.aborted = True

    await send_file(transport, Flow(), FilePart(image_fd, 0, len(DATA)))  # type: ignore[arg-type]

    assert transport.written == []


class Socket:
    """A socket's descriptor for ``sendfile`` to be called with (the test replaces ``sendfile``)."""

    def fileno(self) -> int:
        return 99_999


def failing_sendfile(number: int) -> Any:
    def sendfile(*_: Any) -> int:
        raise OSError(number, os.strerror(number))
    return sendfile


async def test_a_file_sendfile_cannot_read_goes_through_the_transport_instead(
        image_fd: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sendfile", failing_sendfile(errno.EINVAL))  # e.g. a FUSE file system
    transport = PieceTransport(extra={"socket": Socket()})

    await send_file(transport, Flow(), FilePart(image_fd, 0, len(DATA)))  # type: ignore[arg-type]

    assert not transport.aborted
    assert b"".join(transport.written) == DATA


@pytest.mark.parametrize("number", [errno.EPIPE, errno.ECONNRESET])
async def test_a_client_gone_mid_sendfile_cuts_the_connection(
        number: int, image_fd: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sendfile", failing_sendfile(number))
    transport = PieceTransport(extra={"socket": Socket()})

    await send_file(transport, Flow(), FilePart(image_fd, 0, len(DATA)))  # type: ignore[arg-type]

    assert transport.aborted and transport.written == []
