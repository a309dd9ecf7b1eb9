"""A kept buffer is read into again only once nothing but the pool refers to it: the answer it was
lent as, a view of it (what the event loop holds while it writes the base64 to a client) or
numpy's reading of it. Until then another buffer is taken or made."""

from __future__ import annotations

import numpy

from backends.vendors.http.read_buffers import SMALLEST_KEPT, ReadBuffers

SIZE = 2 * 1024 * 1024


def test_a_buffer_is_exactly_the_size_asked_whatever_it_held_before() -> None:
    buffers = ReadBuffers()
    first = buffers.take(SIZE)
    assert len(first) == SIZE
    first_id = id(first)
    del first
    again = buffers.take(SIZE - 1000)
    assert id(again) == first_id and len(again) == SIZE - 1000
    del again
    assert len(buffers.take(SIZE - 10)) == SIZE - 10  # grown back within what it holds


def test_a_buffer_the_answer_still_holds_is_never_taken_again() -> None:
    buffers = ReadBuffers()
    lent = buffers.take(SIZE)
    lent[:5] = b"first"
    other = buffers.take(SIZE)
    assert other is not lent and buffers.held() == 2
    other[:5] = b"other"
    assert lent[:5] == b"first"


def test_a_buffer_is_never_taken_again_while_a_view_of_it_is_alive() -> None:
    buffers = ReadBuffers()
    lent = buffers.take(SIZE)
    lent[100:104] = b"keep"
    views = [memoryview(lent)[100:104], memoryview(lent).toreadonly()[100:104],
             memoryview(memoryview(lent)[50:200])[50:54], numpy.frombuffer(lent, numpy.uint8, 4, 100)]
    lent_id = id(lent)
    del lent
    for index in range(len(views)):
        others = [buffers.take(SIZE) for _ in range(3)]
        assert all(id(other) != lent_id for other in others)
        for other in others:
            other[:] = bytes(len(other))
        assert all(bytes(seen) == b"keep" for seen in views[index:]), "a view saw its bytes change"
        del others, other
        views[index] = memoryview(b"")  # this one let go
    assert buffers.held() == 0
    assert lent_id in {id(buffer) for buffer in [buffers.take(SIZE) for _ in range(4)]}  # read into again


def test_a_buffer_is_taken_again_only_for_a_body_it_holds_without_reallocating() -> None:
    """Neither grown past what it holds (a copy) nor cut to less than half (a smaller allocation,
    losing the room a large answer needs)."""
    buffers = ReadBuffers()
    small_id, large_id = id(buffers.take(SMALLEST_KEPT)), id(buffers.take(SIZE))
    assert id(buffers.take(SIZE // 2 - 1)) not in (small_id, large_id)
    assert id(buffers.take(SIZE // 2 + 1)) == large_id
    assert id(buffers.take(SMALLEST_KEPT - 1)) not in (small_id, large_id)  # never kept below SMALLEST_KEPT
    assert id(buffers.take(SMALLEST_KEPT)) == small_id


def test_buffers_are_kept_up_to_the_bound_lent_or_not() -> None:
    buffers = ReadBuffers(kept_bytes=3 * (SIZE + 1))
    held = [buffers.take(SIZE) for _ in range(5)]
    assert buffers.held() == 3
    assert all(len(buffer) == SIZE for buffer in held)
    del held
    assert buffers.held() == 0
