"""``boltgate serve`` listens on every address its host name resolves to, all on one port, as
uvicorn did when it bound the name itself (``localhost``: 127.0.0.1 and ::1).

Which addresses a name resolves to is this machine's hosts file; the tests that need a name with
several give the resolver one (``tests.several_addresses``).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from proxy.serving import listening
from proxy.serving.listening import PORT_0_TRIES, bind, bound_port, listen_addresses, where
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


class Rival:
    """Another program that takes the port the gateway's first socket was just given (port 0) on
    ``address``, at the moment the gateway comes to bind it there, ``times`` times: the kernel
    picked the port as free on the first address only. Its sockets are real ones; it wraps the
    one function that binds a socket to put its own there first."""

    def __init__(self, address: str, times: int) -> None:
        self.address, self.times = address, times
        self.taken: list[socket.socket] = []

    def racing(self, listen: Callable[..., socket.socket]) -> Callable[..., socket.socket]:
        def listening_after_the_rival(family: socket.AddressFamily, address: tuple[object, ...],
                                      **options: bool) -> socket.socket:
            if address[0] == self.address and len(self.taken) < self.times:
                rival = socket.socket(family, socket.SOCK_STREAM)
                rival.bind(address)
                rival.listen()
                self.taken.append(rival)
            return listen(family, address, **options)

        return listening_after_the_rival

    @property
    def ports(self) -> list[int]:
        return [sock.getsockname()[1] for sock in self.taken]

    def close(self) -> None:
        for sock in self.taken:
            sock.close()


@pytest.fixture
def rival(several: list[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int], Rival]]:
    """``rival(times)``: a ``Rival`` on the name's second address, racing every bind."""
    rivals: list[Rival] = []

    def racing(times: int) -> Rival:
        started = Rival(several[1], times)
        rivals.append(started)
        monkeypatch.setattr(listening, "_listening", started.racing(listening._listening))
        return started

    yield racing
    for started in rivals:
        started.close()


def still_free_on(address: str, ports: list[int]) -> None:
    """Each of ``ports`` can be listened on at ``address``: nothing of the gateway's is left there."""
    for port in ports:
        with socket.socket() as again:
            again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            again.bind((address, port))
            again.listen()


def test_port_0_taken_on_a_later_address_is_bound_again_on_a_fresh_port(several: list[str],
                                                                          rival: Callable[[int], Rival]) -> None:
    racing = rival(1)
    with bound(SEVERAL) as sockets:
        port = bound_port(sockets)
        assert len(racing.ports) == 1 and port not in racing.ports
        assert [sock.getsockname()[:2] for sock in sockets] == [(address, port) for address in several]
        for address in several:
            with socket.create_connection((address, port), timeout=5):
                pass
        still_free_on(several[0], racing.ports)  # the first pick's socket was closed


def test_port_0_taken_on_a_later_address_every_time_is_refused_after_a_few_ports(
        several: list[str], rival: Callable[[int], Rival]) -> None:
    racing = rival(PORT_0_TRIES + 1)
    with pytest.raises(OSError) as refused:
        bind(SEVERAL, 0)
    assert refused.value.errno == errno.EADDRINUSE
    assert len(set(racing.ports)) == PORT_0_TRIES  # a fresh port each time, then no more
    still_free_on(several[0], racing.ports)


def test_a_port_asked_for_that_a_later_address_has_taken_is_refused_at_once(several: list[str],
                                                                            rival: Callable[[int], Rival]) -> None:
    with socket.socket() as free:
        free.bind((several[0], 0))
        asked = free.getsockname()[1]
    racing = rival(PORT_0_TRIES)
    with pytest.raises(OSError) as refused:
        bind(SEVERAL, asked)
    assert (refused.value.errno, racing.ports) == (errno.EADDRINUSE, [asked])
    still_free_on(several[0], [asked])


def test_localhost_listens_on_every_address_this_machines_resolver_gives_it() -> None:
    resolved = {address[0] for _, address in listen_addresses("localhost", 0)}
    with bound("localhost") as sockets:
        assert {sock.getsockname()[0] for sock in sockets} == resolved
        assert len({sock.getsockname()[1] for sock in sockets}) == 1


def test_an_ipv6_address_is_written_in_brackets() -> None:
    assert where("::1", 8000) == "[::1]:8000"
    assert where("localhost", 8000) == "localhost:8000"
