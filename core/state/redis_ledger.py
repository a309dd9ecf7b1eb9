"""The ledger store in Redis: each operation is one Lua script, so replicas sharing the server
agree and no operation can stop halfway.

Layout (under the store's prefix; money keys have no TTL, so with AOF they survive restarts)::

    ledger:account:<account>:spent    what was charged (micro-USD)
    ledger:account:<account>:holds    hash: hold id -> amount held
    ledger:account:<account>:leases   sorted set: hold id scored by its expiry (ms, Redis clock)
    ledger:closed:<id>                a settled/released/voided hold or a counted event (7 days)
    ledger:table:<name>               hash of tallies (spend by day, by vendor, losses...)
    ledger:charges                    a stream: the charge log, trimmed past its retention

Expiries are read from Redis' own clock (``TIME``), so replicas with different clocks agree
on when a lease ends. Placing a hold or settling one is *fenced*: the script does nothing when
it runs later than half the client's timeout after the client sent it. A client that timed out
therefore knows its operation either ran before it gave up or never will (a Redis frozen with
SIGSTOP and resumed later does not charge a request that was already answered 503); the
margin covers clock skew between gateway and Redis up to that half timeout.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from core.errors import StateUnavailable
from core.state.ledger_store import (
    CHARGE_LOG_RETENTION_S,
    CLOSED_TTL_S,
    Balance,
    HoldState,
    LoggedCharge,
    Settled,
    Tally,
    Voided,
    read_position,
)
from core.state.redis_connection import DEFAULT_TIMEOUT_S, answering

_PRELUDE = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function reap(holds, leases, now)
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', leases, '-inf', now)) do
    redis.call('HDEL', holds, id)
  end
  redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
end
local function held(holds)
  local total = 0
  for _, amount in ipairs(redis.call('HVALS', holds)) do total = total + tonumber(amount) end
  return total
end
local function spent(key)
  return tonumber(redis.call('GET', key) or '0')
end
-- A charge written (INCRBY) or taken back (DECRBY): KEYS[1] the spent counter, KEYS[5] the
-- charge log, KEYS[6..] the tally tables, whose field and amount pairs start at ARGV[first_pair].
local function write_charge(spend, amount, entry, retention, first_pair, now)
  redis.call(spend, KEYS[1], amount)
  for i = 6, #KEYS do
    local at = first_pair + 2 * (i - 6)
    redis.call('HINCRBY', KEYS[i], ARGV[at], ARGV[at + 1])
  end
  if entry ~= '' then
    redis.call('XADD', KEYS[5], 'MINID', '~', string.format('%d', now - tonumber(retention)), '*', 'entry', entry)
  end
end
"""

# KEYS: spent, holds, leases, closed. ARGV: hold id, amount, limit (-1: none), lease ms, not after ms.
_HOLD = _PRELUDE + """
local now = now_ms()
if now > tonumber(ARGV[5]) then return -1 end
reap(KEYS[2], KEYS[3], now)
if redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
local current = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local wanted = math.max(current, tonumber(ARGV[2]))
local limit = tonumber(ARGV[3])
if limit >= 0 and wanted > current and spent(KEYS[1]) + held(KEYS[2]) - current + wanted > limit then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[1], string.format('%d', wanted))
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[4]), ARGV[1])
return 1
"""

# KEYS: spent, holds, leases, closed, the charge log, then one table per tally.
# ARGV: hold id, charge, limit (-1: none), closed ttl ms, not after ms, log entry ('' for none),
# log retention ms, then field, amount per tally. A charge above the live hold ('covered': 0 once
# its lease ran out) must fit the limit (``LedgerStore.settle``).
_SETTLE = _PRELUDE + """
local now = now_ms()
if now > tonumber(ARGV[5]) then return -1 end
reap(KEYS[2], KEYS[3], now)
local closed = redis.call('GET', KEYS[4])
if closed == 'settled' then return 2 end
if closed then return 3 end
local limit = tonumber(ARGV[3])
local charge = tonumber(ARGV[2])
local covered = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if limit >= 0 and charge > covered and spent(KEYS[1]) + held(KEYS[2]) - covered + charge > limit then
  return 0
end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('SET', KEYS[4], 'settled', 'PX', ARGV[4])
write_charge('INCRBY', ARGV[2], ARGV[6], ARGV[7], 8, now)
return 1
"""

# KEYS: spent, holds, leases, closed, the charge log, then one table per tally.
# ARGV: hold id, refund, closed ttl ms, log entry ('' for none), log retention ms, then field, amount per tally.
_VOID = _PRELUDE + """
local closed = redis.call('GET', KEYS[4])
if closed == 'settled' then
  redis.call('SET', KEYS[4], 'voided', 'PX', ARGV[3])
  write_charge('DECRBY', ARGV[2], ARGV[4], ARGV[5], 6, now_ms())
  return 2
end
if closed then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('SET', KEYS[4], 'released', 'PX', ARGV[3])
return 1
"""

# KEYS: holds, leases, closed. ARGV: hold id, closed ttl ms.
_RELEASE = """
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SET', KEYS[3], 'released', 'PX', ARGV[2])
return 1
"""

# KEYS: spent, holds, leases. Reads only: live holds are those whose lease ends after now.
_BALANCE = _PRELUDE + """
local live = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. now_ms(), '+inf')) do
  live = live + tonumber(redis.call('HGET', KEYS[2], id) or '0')
end
return {spent(KEYS[1]), live}
"""

# KEYS: the event's marker, then one table per tally. ARGV: marker ttl ms, then field, amount per tally.
_COUNT = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 0 end
for i = 2, #KEYS do
  redis.call('HINCRBY', KEYS[i], ARGV[2 * i - 2], ARGV[2 * i - 1])
end
return 1
"""

_SETTLED = {1: Settled.CHARGED, 2: Settled.ALREADY_SETTLED, 3: Settled.ALREADY_RELEASED, 0: Settled.REFUSED}
_VOIDED = {2: Voided.REFUNDED, 1: Voided.RELEASED, 0: Voided.UNCHANGED}


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _next_stream_id(after: str) -> tuple[int, int]:
    """The first stream id after ``after`` (a stream id, ``<ms>-<seq>``, is this store's
    position): the charges of one millisecond are told apart by their sequence, so a page that
    ends inside one loses none. Computed, rather than XRANGE's exclusive ``(`` form, which
    servers before 6.2 do not read; a position's numbers are below 10**19, so the sequence after
    one still fits the 64 bits of a stream id."""
    ms, sequence = read_position(after)
    return ms, sequence + 1


class RedisLedgerStore:
    """``LedgerStore`` over a ``redis.asyncio`` client (usually the state store's, shared)."""

    def __init__(self, client: Redis, key_prefix: str = "boltgate:", *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 charge_log_retention_s: float = CHARGE_LOG_RETENTION_S) -> None:
        self._client = client
        self._prefix = key_prefix + "ledger:"
        self._timeout_s = timeout_s
        self._retention_ms = _ms(charge_log_retention_s)
        self._hold: Any = client.register_script(_HOLD)
        self._settle: Any = client.register_script(_SETTLE)
        self._release: Any = client.register_script(_RELEASE)
        self._void: Any = client.register_script(_VOID)
        self._balance: Any = client.register_script(_BALANCE)
        self._count: Any = client.register_script(_COUNT)

    def _account_keys(self, account: str) -> list[str]:
        base = f"{self._prefix}account:{account}:"
        return [base + "spent", base + "holds", base + "leases"]

    def _closed(self, marker: str) -> str:
        return f"{self._prefix}closed:{marker}"

    def _table(self, name: str) -> str:
        return f"{self._prefix}table:{name}"

    def _not_after_ms(self) -> int:
        """The fence: later than this (Redis clock), a hold or a charge is no longer written."""
        return _ms(time.time() + self._timeout_s / 2)

    async def _run(self, script: Any, keys: list[str], args: list[object]) -> Any:
        async with answering(self._timeout_s):
            return await script(keys=keys, args=args)

    @staticmethod
    def _fenced(outcome: Any) -> None:
        if outcome == -1:
            raise StateUnavailable("The state store (Redis) answered too late; nothing was written")

    async def hold(self, account: str, hold_id: str, amount: int, *, limit: int | None, lease_s: float) -> bool:
        keys = [*self._account_keys(account), self._closed(hold_id)]
        args: list[object] = [hold_id, amount, -1 if limit is None else limit, _ms(lease_s), self._not_after_ms()]
        outcome = await self._run(self._hold, keys, args)
        self._fenced(outcome)
        return bool(outcome == 1)

    async def settle(
        self, account: str, hold_id: str, charge: int, *, limit: int | None, tallies: Sequence[Tally] = (),
        entry: bytes = b"",
    ) -> Settled:
        keys = [*self._account_keys(account), self._closed(hold_id), self._prefix + "charges",
                *(self._table(t.table) for t in tallies)]
        args: list[object] = [hold_id, charge, -1 if limit is None else limit, _ms(CLOSED_TTL_S),
                              self._not_after_ms(), entry, self._retention_ms]
        for tally in tallies:
            args += [tally.field, tally.amount]
        outcome = await self._run(self._settle, keys, args)
        self._fenced(outcome)
        return _SETTLED[int(outcome)]

    async def void(
        self, account: str, hold_id: str, refund: int, *, tallies: Sequence[Tally] = (), entry: bytes = b"",
    ) -> Voided:
        keys = [*self._account_keys(account), self._closed(hold_id), self._prefix + "charges",
                *(self._table(t.table) for t in tallies)]
        args: list[object] = [hold_id, refund, _ms(CLOSED_TTL_S), entry, self._retention_ms]
        for tally in tallies:
            args += [tally.field, tally.amount]
        return _VOIDED[int(await self._run(self._void, keys, args))]

    async def release(self, account: str, hold_id: str) -> bool:
        keys = [*self._account_keys(account)[1:], self._closed(hold_id)]
        return bool(await self._run(self._release, keys, [hold_id, _ms(CLOSED_TTL_S)]) == 1)

    async def balance(self, account: str) -> Balance:
        spent, held = await self._run(self._balance, self._account_keys(account), [])
        return Balance(int(spent), int(held))

    async def count(self, event_id: str, tallies: Sequence[Tally]) -> bool:
        keys = [self._closed(event_id), *(self._table(t.table) for t in tallies)]
        args: list[object] = [_ms(CLOSED_TTL_S)]
        for tally in tallies:
            args += [tally.field, tally.amount]
        return bool(await self._run(self._count, keys, args) == 1)

    async def hold_state(self, account: str, hold_id: str) -> HoldState:
        async with answering(self._timeout_s):
            closed: Any = await self._client.get(self._closed(hold_id))
        if closed is None:
            return HoldState.OPEN
        return HoldState.SETTLED if bytes(closed) == b"settled" else HoldState.RELEASED

    async def charges(self, since: float, limit: int = 10_000, *, after: str | None = None) -> list[LoggedCharge]:
        first = (_ms(since), 0) if after is None else max((_ms(since), 0), _next_stream_id(after))
        async with answering(self._timeout_s):
            rows: Any = await self._client.xrange(self._prefix + "charges", min=f"{first[0]}-{first[1]}",
                                                  count=limit)
        logged = []
        for stream_id, fields in rows or []:
            position = bytes(stream_id).decode()
            written_ms = int(position.partition("-")[0])
            logged.append(LoggedCharge(written_ms / 1000, bytes(fields[b"entry"]), position))
        return logged

    async def table(self, name: str) -> dict[str, int]:
        async with answering(self._timeout_s):
            raw = await self._client.hgetall(self._table(name))
        return {(f.decode() if isinstance(f, bytes) else f): int(v) for f, v in raw.items()}

    async def aclose(self) -> None:
        """The client belongs to the state store it came from, which closes it."""
