"""How the lean client spells a request: the target as the URL wrote it, the host, the fields."""

from __future__ import annotations

import pytest

from backends.vendors.http.lean_request import Target, request_bytes, target_of


@pytest.mark.parametrize(("url", "expected"), [
    ("https://api.vendor.test/v1/images", Target(("https", "api.vendor.test", 443), "api.vendor.test", "/v1/images")),
    ("http://Cdn.Test:8080", Target(("http", "cdn.test", 8080), "Cdn.Test:8080", "/")),
    ("http://cdn.test?x=1", Target(("http", "cdn.test", 80), "cdn.test", "/?x=1")),
    ("https://[::1]:8443/a?b=%2F#frag", Target(("https", "::1", 8443), "[::1]:8443", "/a?b=%2F")),
    ("https://user:pw@cdn.test/x", Target(("https", "cdn.test", 443), "cdn.test", "/x")),
    ("https://cdn.test/a b/\u00e9.png?q=\u00e9",
     Target(("https", "cdn.test", 443), "cdn.test", "/a%20b/%C3%A9.png?q=%C3%A9")),
    ("https://b\u00fccher.test/x", Target(("https", "xn--bcher-kva.test", 443), "xn--bcher-kva.test", "/x")),
])
def test_the_target_keeps_what_a_request_line_can_carry_and_encodes_the_rest(url: str, expected: Target) -> None:
    assert target_of(url) == expected


def test_the_calls_fields_win_whatever_their_case_and_the_clients_own_are_kept() -> None:
    sent = request_bytes("POST", target_of("http://vendor.test/v1"),
                         {"User-Agent": "x/1", "Host": "evil.test", "Content-Length": "999"}, b"abc")
    lines = sent.split(b"\r\n")
    assert lines[0] == b"POST /v1 HTTP/1.1"
    assert b"host: vendor.test" in lines and b"content-length: 3" in lines
    assert b"User-Agent: x/1" in lines and b"user-agent: boltgate" not in lines
    assert b"evil.test" not in sent and b"999" not in sent
    assert sent.endswith(b"\r\n\r\nabc")


@pytest.mark.parametrize("headers", [{"x-a": "1\r\nx-b: 2"}, {"x-a\n": "1"}, {"x-a": "1\x00"}, {"x-a": "\u20ac"}])
def test_a_field_that_cannot_be_sent_as_it_is_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"line break|latin-1"):
        request_bytes("GET", target_of("http://vendor.test/"), headers, None)
