"""The Redis stores through real outages: a ``redis-server`` killed (SIGKILL), restarted on the same
port, or frozen (SIGSTOP) and resumed.

What must hold: an outage is a ``StateUnavailable`` (503 upstream), never another exception nor
a hang; connections that died with the server are replaced at once when it is back; a hold or a
charge whose client gave up is never written later; with AOF on, money and keys survive a kill.
The ``asyncio.timeout`` guards only turn a hang into a failure; they time nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
import redis.asyncio
import uvloop

from core.errors import StateUnavailable
from core.state.ledger_store import Balance, Settled, Tally
from core.state.redis import RedisStateStore
from core.state.redis_ledger import RedisLedgerStore
from tests.e2e.lossy_proxy import LossyProxy
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis

TIMEOUT_S = 0.5
HANG_GUARD_S = 10.0


@pytest.fixture
def server() -> Iterator[RedisServer]:
    redis_server = RedisServer(appendonly=True)
    redis_server.start()
    yield redis_server
    redis_server.stop()


def stores(server: RedisServer) -> tuple[RedisStateStore, RedisLedgerStore]:
    state = RedisStateStore.from_url(server.url, timeout_s=TIMEOUT_S)
    return state, RedisLedgerStore(state.client, timeout_s=TIMEOUT_S)


async def test_a_killed_server_is_state_unavailable_for_every_operation(server: RedisServer) -> None:
    state, book = stores(server)
    try:
        await state.set("k", b"v")
        server.kill()
        async with asyncio.timeout(HANG_GUARD_S):
            for call in (state.get("k"), state.set("k", b"w"), state.incr("n"), state.hgetall("h"),
                         book.hold("acct", "h1", 1, limit=10, lease_s=60), book.balance("acct"),
                         book.settle("acct", "h1", 1, limit=10), book.release("acct", "h1")):
                with pytest.raises(StateUnavailable) as error:
                    await call
                assert error.value.status_code == 503
                assert error.value.headers["retry-after"]
    finally:
        await state.aclose()


async def test_connections_that_died_with_the_server_are_replaced_at_once(server: RedisServer) -> None:
    state, book = stores(server)
    try:
        # Open several pooled connections, so that every one of them is stale after the restart.
        await asyncio.gather(*(state.set(f"k{index}", b"v") for index in range(8)))
        async with asyncio.timeout(HANG_GUARD_S):  # everysec: an answered write may reach the file later
            while not all(server.aof_holds(f"k{index}".encode()) for index in range(8)):
                await asyncio.sleep(0.02)
        server.kill()
        server.restart()
        async with asyncio.timeout(HANG_GUARD_S):
            results = await asyncio.gather(*(state.get(f"k{index}") for index in range(8)))
            assert results == [b"v"] * 8
            assert await book.hold("acct", "h1", 5, limit=10, lease_s=60)
    finally:
        await state.aclose()


class WritesAfterTheReset(redis.asyncio.Connection):
    """Once connected, it writes its first command only after its transport has taken in the
    reset the other end sent: an order that a busy gateway's loop meets by chance (an iteration
    between the connect and the write), and that uvloop answers with a ``RuntimeError`` on the
    write, where asyncio's loop fails the read that follows with an ``OSError``."""

    async def _connect(self) -> None:
        await super()._connect()  # type: ignore[no-untyped-call]
        assert self._writer is not None
        async with asyncio.timeout(HANG_GUARD_S):
            while not self._writer.transport.is_closing():
                await asyncio.sleep(0.01)


@pytest.mark.parametrize("new_loop", [asyncio.new_event_loop, uvloop.new_event_loop], ids=["asyncio", "uvloop"])
def test_a_connection_reset_as_soon_as_it_is_accepted_is_state_unavailable(
    server: RedisServer, new_loop: Callable[[], asyncio.AbstractEventLoop]
) -> None:
    """The network between the gateway and Redis resets every connection (a relay cut, a proxy
    whose Redis is gone, a server at its ``maxclients``): uvloop's ``RuntimeError`` escaped as
    a 500, and ended the background task of a void owed without it being made."""
    relay = LossyProxy(int(server.url.rsplit(":", 1)[1].split("/")[0])).start()
    relay.cut()

    async def settle_through_the_relay() -> None:
        state, book = stores(server)
        state.client.connection_pool.connection_class = WritesAfterTheReset  # before its first connection
        state.client.connection_pool.connection_kwargs["port"] = relay.port
        try:
            with pytest.raises(StateUnavailable):
                await book.settle("acct", "h1", 1, limit=10)
        finally:
            await state.aclose()

    try:
        with asyncio.Runner(loop_factory=new_loop) as runner:
            runner.run(settle_through_the_relay())
    finally:
        relay.stop()


async def test_a_frozen_server_is_state_unavailable_and_serves_again_once_resumed(server: RedisServer) -> None:
    state, _ = stores(server)
    try:
        await state.set("k", b"v")
        server.freeze()
        try:
            async with asyncio.timeout(HANG_GUARD_S):
                with pytest.raises(StateUnavailable):
                    await state.get("k")
        finally:
            server.thaw()
        async with asyncio.timeout(HANG_GUARD_S):
            assert await state.get("k") == b"v"
    finally:
        await state.aclose()


async def test_a_charge_whose_client_gave_up_is_never_written_when_the_server_resumes(server: RedisServer) -> None:
    state, book = stores(server)
    try:
        assert await book.hold("acct", "warm-up", 10, limit=100, lease_s=60)  # Redis now knows both scripts
        assert await book.settle("acct", "warm-up", 0, limit=100) is Settled.CHARGED
        assert await book.hold("acct", "h1", 50, limit=100, lease_s=60)
        server.freeze()
        try:
            with pytest.raises(StateUnavailable):
                await book.settle("acct", "h1", 40, limit=100, tallies=[Tally("acct:day_usd", "d", 40)])
            with pytest.raises(StateUnavailable):
                await book.hold("acct", "h2", 30, limit=100, lease_s=60)
        finally:
            server.thaw()
        await asyncio.sleep(0.2)  # the server runs what was queued on the abandoned connections
        async with asyncio.timeout(HANG_GUARD_S):
            assert await book.balance("acct") == Balance(spent=0, held=50)
            assert await book.table("acct:day_usd") == {}
            assert await book.settle("acct", "h1", 40, limit=100) is Settled.CHARGED
    finally:
        await state.aclose()


async def test_with_aof_money_and_keys_survive_a_kill(server: RedisServer) -> None:
    state, book = stores(server)
    try:
        await state.set("apikey:abc", b'{"revoked": true}')
        assert await book.hold("acct", "h1", 70, limit=100, lease_s=60)
        assert await book.settle("acct", "h1", 60, limit=100, tallies=[Tally("acct:day_usd", "d", 60)])
        assert await book.hold("acct", "h2", 25, limit=100, lease_s=60)
        async with asyncio.timeout(HANG_GUARD_S):  # everysec: an answered write may reach the file later
            while not server.aof_holds(b"h2"):
                await asyncio.sleep(0.02)
        server.kill()
        server.restart()
        async with asyncio.timeout(HANG_GUARD_S):
            assert await state.get("apikey:abc") == b'{"revoked": true}'
            assert await book.balance("acct") == Balance(spent=60, held=25)
            assert await book.table("acct:day_usd") == {"d": 60}
            assert await book.settle("acct", "h1", 60, limit=100) is Settled.ALREADY_SETTLED
    finally:
        await state.aclose()
