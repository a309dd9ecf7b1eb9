"""``boltgate serve`` listens on every address its host name resolves to, all on one port, as
uvicorn did when it bound the name itself (``localhost``: 127.0.0.1 and ::1).

Which addresses a name resolves to is this machine's hosts file; the tests that need a name with
several give the resolver one (``tests.several_addresses``).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from proxy.serving.listening import bind, bound_port, listen_addresses, where
from tests.several_addresses import NO_IPV6, SEVERAL, SEVERAL_ADDRESSES, resolving_several


@pytest.fixture
def several(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """``SEVERAL`` resolving to ``SEVERAL_ADDRESSES``, every other name as before."""
    monkeypatch.setattr(socket, "getaddrinfo", resolving_several(socket.getaddrinfo))
    yield SEVERAL_ADDRESSES


@contextmanager
def bound(host: str) -> Iterator[list[socket.socket]]:
    """``bind(host, 0)``'s sockets, closed at the end of the block."""
    sockets = bind(host, 0)
    try:
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def test_a_name_with_several_addresses_listens_on_each_on_the_port_the_first_was_given(several: list[str]) -> None:
    with bound(SEVERAL) as sockets:
        port = bound_port(sockets)
        assert port != 0
        assert [sock.getsockname()[:2] for sock in sockets] == [(address, port) for address in several]
        for address in several:  # each accepts a connection
            with socket.create_connection((address, port), timeout=5):
                pass


def test_a_name_with_ipv4_and_ipv6_addresses_listens_on_both(several: list[str]) -> None:
    if "::1" not in several:
        pytest.skip(NO_IPV6)
    with bound(SEVERAL) as sockets:
        assert {sock.family for sock in sockets} == {socket.AF_INET, socket.AF_INET6}
        ipv6 = next(sock for sock in sockets if sock.family == socket.AF_INET6)
        assert ipv6.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1  # beside IPv4's, never over it


def test_a_port_taken_on_any_address_is_refused_with_none_left_listening(several: list[str]) -> None:
    with socket.socket() as squatter:  # the port free on the first address, taken on the second
        squatter.bind((several[1], 0))
        squatter.listen()
        taken = squatter.getsockname()[1]

        with pytest.raises(OSError, match="Address already in use"):
            bind(SEVERAL, taken)

        with socket.socket() as first:  # the first address's socket was closed again
            first.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            first.bind((several[0], taken))
            first.listen()


def test_localhost_listens_on_every_address_this_machines_resolver_gives_it() -> None:
    resolved = {address[0] for _, address in listen_addresses("localhost", 0)}
    with bound("localhost") as sockets:
        assert {sock.getsockname()[0] for sock in sockets} == resolved
        assert len({sock.getsockname()[1] for sock in sockets}) == 1


def test_an_ipv6_address_is_written_in_brackets() -> None:
    assert where("::1", 8000) == "[::1]:8000"
    assert where("localhost", 8000) == "localhost:8000"
