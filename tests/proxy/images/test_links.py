"""Image URLs are built from the public base URL or an allowed Host, never from any Host."""

from __future__ import annotations

from proxy.images.links import VERDICTS_KEPT, ImageLinks

LOCAL = ["localhost", "127.0.0.1", "::1"]


def test_the_public_base_url_wins() -> None:
    links = ImageLinks("https://img.example.com/", LOCAL)
    assert links.base_url("http", "localhost:8000", ("10.0.0.5", 8000)) == "https://img.example.com"


def test_an_allowed_host_is_used_as_the_client_typed_it() -> None:
    links = ImageLinks(None, [*LOCAL, "gateway.example.com:8443"])
    assert links.base_url("http", "localhost:8000", ("127.0.0.1", 8000)) == "http://localhost:8000"
    assert links.base_url("http", "[::1]:8000", ("::1", 8000)) == "http://[::1]:8000"
    assert links.base_url("https", "gateway.example.com:8443", None) == "https://gateway.example.com:8443"


def test_any_other_host_gets_the_address_the_connection_reached() -> None:
    links = ImageLinks(None, [*LOCAL, "gateway.example.com:8443"])
    for host in ("evil.example", "localhost.evil.example", "gateway.example.com:9999", "localhost:80@evil",
                 "[::1", "", "127.0.0.1:bad"):
        assert links.base_url("http", host, ("10.0.0.5", 8000)) == "http://10.0.0.5:8000", host
    assert links.base_url("http", "evil.example", ("fd00::5", 80)) == "http://[fd00::5]"


def test_a_remembered_verdict_is_the_one_a_fresh_look_gives() -> None:
    links = ImageLinks(None, LOCAL)
    for _ in range(2):  # the second time from memory
        assert links.base_url("http", "localhost:8000", ("10.0.0.5", 8000)) == "http://localhost:8000"
        assert links.base_url("http", "evil.example", ("10.0.0.5", 8000)) == "http://10.0.0.5:8000"


def test_a_client_sending_a_new_host_each_time_does_not_grow_the_memory() -> None:
    links = ImageLinks(None, LOCAL)
    for index in range(3 * VERDICTS_KEPT):
        assert not links.allows(f"host{index}.evil.example")
    assert len(links._verdicts) <= VERDICTS_KEPT
    assert links.allows("localhost")
