"""Jobs on a Redis Stream read through one consumer group: shared by replicas, kept by restarts.

    XADD       submit appends ``{job: <id>}`` to ``<prefix>jobs:stream``
    XREADGROUP a runner takes the next new entry; it stays in the group's pending list (PEL),
               owned by that runner, until acknowledged
    XCLAIM     (``JUSTID``, idle 0) the owning runner keeps its entry fresh while the job runs
    XAUTOCLAIM a runner takes over entries idle longer than ``reclaim_idle_s``: their runner
               died mid-run. Redis counts the deliveries; the runner retries a job once and
               fails it after that (``proxy.jobs.runner``)
    XACK, XDEL the job is finished (and its webhook delivered or given up): entry gone
    XADD + XACK, XDEL (one MULTI)
               the runner did not start the job (its key is at its ``concurrent_requests``):
               appended again with ``before``, how often it was handed out before this time
               (a wait is not a lost run), and the old entry gone
    XINFO CONSUMERS, XGROUP DELCONSUMER
               a runner forgets consumers idle past ``consumer_expiry_s`` that own no
               pending entry: runners of processes gone for good

Every runner has its own consumer name (host, pid, random), so a restarted gateway is a new
consumer and reclaims what its previous life left pending once that has been idle long enough.
That leaves the old name in the group; the sweep removes it once its entries were reclaimed. The
check and the removal are one script: a consumer that takes an entry between the two would lose
it from the pending list (DELCONSUMER drops a consumer's pending entries). A live runner reads
every ``wait_s``, so it is never that idle; were it removed, its next read would add it again.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from core.state.redis_connection import answering
from proxy.jobs.book import JobBook, RecordWrite
from proxy.jobs.queue import RETRY_LATER_S, Delivery

GROUP = "runners"

_FORGET_IDLE_CONSUMERS = """
local forgotten = {}
for _, fields in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local consumer = {}
  for index = 1, #fields, 2 do consumer[fields[index]] = fields[index + 1] end
  if consumer['name'] ~= ARGV[2] and tonumber(consumer['pending']) == 0
      and tonumber(consumer['idle']) > tonumber(ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], consumer['name'])
    table.insert(forgotten, consumer['name'])
  end
end
return forgotten
"""
SWEEP_EVERY_S = 60.0
"""At most how often one runner looks for consumers to forget."""


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def _before(fields: dict[bytes, bytes]) -> int:
    """How often the entry's job was handed out before it was appended again (``defer``)."""
    return int(fields.get(b"before", b"0"))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisStreamJobQueue:
    def __init__(self, client: Redis, key_prefix: str, *, timeout_s: float, reclaim_idle_s: float,
                 wait_s: float = 1.0, consumer: str | None = None, consumer_expiry_s: float = 600.0) -> None:
        self._client = client
        self._prefix = key_prefix
        self._stream = f"{key_prefix}jobs:stream"
        self._timeout_s = timeout_s
        self._reclaim_idle_ms = max(1, round(reclaim_idle_s * 1000))
        self._block_ms = max(1, round(min(wait_s, timeout_s / 2) * 1000))
        self.consumer = consumer or consumer_name()
        self._group_ready = False
        self._expiry_ms = max(1, round(consumer_expiry_s * 1000))
        self._sweep_every_s = min(SWEEP_EVERY_S, consumer_expiry_s / 2)
        self._next_sweep = 0.0
        self._forget_idle: Any = client.register_script(_FORGET_IDLE_CONSUMERS)

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        async with answering(self._timeout_s):
            try:
                await self._client.xgroup_create(self._stream, GROUP, id="0", mkstream=True)
            except ResponseError as exc:  # caught here: ``answering`` reads any BUSY... as an outage
                if not str(exc).startswith("BUSYGROUP"):
                    raise
        self._group_ready = True

    async def put(self, job_id: str, record: RecordWrite | None = None) -> None:
        """The record and the stream entry in one ``MULTI``/``EXEC``: both, or neither."""
        await self._ensure_group()
        async with answering(self._timeout_s), self._client.pipeline(transaction=True) as both:
            if record is not None:
                both.set(self._prefix + record.key, record.value, px=max(1, round(record.ttl_s * 1000)))
            both.xadd(self._stream, {"job": job_id})
            await both.execute()

    async def next(self) -> Delivery | None:
        await self._ensure_group()
        if time.monotonic() >= self._next_sweep:
            await self.forget_idle_consumers()
        reclaimed = await self._reclaim()
        if reclaimed is not None:
            return reclaimed
        async with answering(self._timeout_s + self._block_ms / 1000):
            answer: Any = await self._client.xreadgroup(GROUP, self.consumer, {self._stream: ">"}, count=1,
                                                        block=self._block_ms)
        for _stream, entries in answer or []:
            for entry_id, fields in entries:
                return Delivery(_text(fields[b"job"]), _before(fields) + 1, _text(entry_id))
        return None

    async def forget_idle_consumers(self) -> list[str]:
        """Remove other consumers idle past ``consumer_expiry_s`` with nothing pending; their names."""
        self._next_sweep = time.monotonic() + self._sweep_every_s
        async with answering(self._timeout_s):
            forgotten = await self._forget_idle(keys=[self._stream], args=[GROUP, self.consumer, self._expiry_ms])
        return [_text(name) for name in forgotten]

    async def _reclaim(self) -> Delivery | None:
        """An entry whose runner stopped keeping it alive, with how often it was handed out."""
        async with answering(self._timeout_s):
            answer = await self._client.xautoclaim(self._stream, GROUP, self.consumer, self._reclaim_idle_ms,
                                                   start_id="0-0", count=1)
        claimed = answer[1] if len(answer) > 1 else []
        if not claimed:
            return None
        entry_id, fields = claimed[0]
        async with answering(self._timeout_s):
            pending = await self._client.xpending_range(self._stream, GROUP, min=entry_id, max=entry_id, count=1)
        deliveries = int(pending[0]["times_delivered"]) if pending else 2
        return Delivery(_text(fields[b"job"]), _before(fields) + deliveries, _text(entry_id))

    async def keep_alive(self, delivery: Delivery) -> None:
        """Reset the entry's idle time (``JUSTID`` leaves its delivery count alone)."""
        async with answering(self._timeout_s):
            await self._client.xclaim(self._stream, GROUP, self.consumer, 0, [delivery.entry_id], justid=True)

    async def ack(self, delivery: Delivery) -> None:
        async with answering(self._timeout_s):
            await self._client.xack(self._stream, GROUP, delivery.entry_id)
            await self._client.xdel(self._stream, delivery.entry_id)

    async def retry_later(self, delivery: Delivery) -> None:
        """Nothing to do: the entry stays pending and is reclaimed once idle (``reclaim_idle_s``)."""
        return None

    async def defer(self, delivery: Delivery) -> None:
        """After the pause (the entry kept alive by its runner meanwhile), the job goes to the
        end of the stream as a new entry that remembers its earlier hand-outs; the old one is
        acknowledged and deleted in the same transaction, so the job is never in it twice."""
        await asyncio.sleep(RETRY_LATER_S)
        async with answering(self._timeout_s), self._client.pipeline(transaction=True) as transaction:
            transaction.xadd(self._stream, {"job": delivery.job_id, "before": str(delivery.deliveries - 1)})
            transaction.xack(self._stream, GROUP, delivery.entry_id)
            transaction.xdel(self._stream, delivery.entry_id)
            await transaction.execute()

    async def recover(self, book: JobBook) -> int:
        """Nothing to do: what a dead runner left is in the pending list, reclaimed by ``next``."""
        return 0

    async def aclose(self) -> None:
        return None  # the connection pool belongs to the state store
