"""A response's head read by ``HeadParser``: what it says about the body, and a parser that
leaves nothing for the garbage collector."""

from __future__ import annotations

import weakref

import pytest

from backends.vendors.http.lean_head import HeadParser
from tests.collector import collector_off

CHUNKED = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-request-id: r1\r\n\r\n"


def test_a_chunked_body_is_decoded_into_pieces_and_its_end_seen() -> None:
    parser = HeadParser()
    head = parser.parse(CHUNKED, no_body=False)
    assert (head.status, head.framing, head.headers["x-request-id"]) == (200, "chunked", "r1")
    parser.feed(b"3\r\nabc\r\n0\r\n\r\n")
    assert (parser.pieces, parser.complete, parser.overrun) == ([b"abc"], True, False)
    parser.feed(b"HTTP/1.1 200 OK\r\n")  # another answer, one nobody asked for
    assert parser.overrun


def test_a_head_that_is_not_http_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"not an HTTP/1\.x head"):
        HeadParser().parse(b"SSH-2.0-OpenSSH\r\n\r\n", no_body=False)


def test_a_parser_is_freed_at_once_not_left_to_the_garbage_collector() -> None:
    """httptools' parser holds the object it calls back: were that the ``HeadParser``, every
    answer the lean client read would be a reference cycle."""
    parser = HeadParser()
    parser.parse(CHUNKED, no_body=False)
    parser.feed(b"3\r\nabc\r\n0\r\n\r\n")
    gone = weakref.ref(parser)
    with collector_off():
        del parser
        assert gone() is None
