"""Group commit: the ledger writes asked for in one turn of the event loop share one transaction.

Each money operation used to be its own ``BEGIN IMMEDIATE ... COMMIT``, and the commit is what
costs (its WAL frames written, its file locks): about a quarter of a served request's CPU at
concurrency 32, where many holds and settles are asked for in the same turn of the loop. Here
each write is queued with a future; the first one of a turn schedules a flush for the end of
that turn, and the flush runs every queued write in order inside one transaction, each within
its own ``SAVEPOINT``, then commits once and only then answers the callers.

What each caller is promised is unchanged:

- **durable before it returns**: a future is resolved only after the ``COMMIT`` succeeded; a
  process killed before that answered nobody, and its writes are not in the file;
- **atomic and serial**: the writes run one after another on one connection with no ``await``
  between them (the flush is one callback), each sees the ones before it, and a write that
  fails or refuses (returns ``Undo``) undoes only itself: its ``SAVEPOINT`` is rolled back.
  A write alone in its turn (every write at concurrency 1) runs without one, its transaction
  being all it would undo: two statements fewer per ledger write, of the dozen a served request
  runs on the event loop's thread (issue 17);
- **all or nothing on failure**: a ``BEGIN`` or ``COMMIT`` the database refuses rolls the whole
  batch back and every caller gets ``StateUnavailable`` (503), none of their writes applied;
- **a cancelled caller** whose write has not run yet is dropped from the batch (the flush skips
  cancelled futures), so it did nothing, as when it was cancelled before calling.

Two processes on one file (``--workers``) still serialise on ``BEGIN IMMEDIATE``, batch by batch.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from core.errors import StateUnavailable
from core.state.sqlite_database import SqliteDatabase

T = TypeVar("T")

Write = Callable[[sqlite3.Connection], Any]


@dataclass(frozen=True, slots=True)
class Undo(Generic[T]):
    """What a write returns to undo everything it wrote and still answer ``value`` (a refused
    settle): its caller gets ``value``."""

    value: T


class GroupCommit:
    """Queues writes (``await group.write(work)``) and commits each turn's writes together."""

    def __init__(self, database: SqliteDatabase) -> None:
        self._database = database
        self._queued: dict[asyncio.AbstractEventLoop, list[tuple[Write, asyncio.Future[Any]]]] = {}
        """Per event loop (a server's, a test's), the writes its next flush runs."""

    async def write(self, work: Callable[[sqlite3.Connection], T | Undo[T]]) -> T:
        """``work(connection)``'s result once it is committed; ``StateUnavailable`` when the
        database failed it (nothing of it written)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        queue = self._queued.get(loop)
        if queue is None:
            queue = self._queued[loop] = []
            loop.call_soon(self._flush, loop)
        queue.append((work, future))
        return await future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = [(work, future) for work, future in self._queued.pop(loop, []) if not future.cancelled()]
        if not batch:
            return
        try:
            outcomes = self._run(batch)
        except Exception as error:  # StateUnavailable (nothing written), or anything else: no caller left waiting
            for _, future in batch:
                future.set_exception(error)
            return
        for (_, future), (value, failure) in zip(batch, outcomes, strict=True):
            if failure is not None:
                future.set_exception(failure)
            else:
                future.set_result(value)

    def _run(self, batch: list[tuple[Write, asyncio.Future[Any]]]) -> list[tuple[Any, BaseException | None]]:
        """Every write in one transaction, each in its own savepoint (but a write alone); committed once."""
        if len(batch) == 1:
            return [self._alone(batch[0][0])]
        with self._database.transaction() as connection:  # BEGIN IMMEDIATE ... COMMIT, failures as 503
            return [_in_savepoint(connection, work) for work, _ in batch]

    def _alone(self, work: Write) -> tuple[Any, BaseException | None]:
        """``work``'s value in a transaction of its own: an ``Undo`` or an error it raises rolls
        the transaction back (an error reaches its caller as in a savepoint: ``Transaction`` maps
        a database failure to ``StateUnavailable``, with the message ``_in_savepoint`` gives it)."""
        with self._database.transaction() as connection:
            value = work(connection)
            if isinstance(value, Undo):
                connection.execute("ROLLBACK")  # nothing written, nothing left to commit
                return value.value, None
            return value, None


def _in_savepoint(connection: sqlite3.Connection, work: Write) -> tuple[Any, BaseException | None]:
    """``work``'s value, or the error it raised with what it wrote undone."""
    connection.execute("SAVEPOINT write")
    try:
        value = work(connection)
    except Exception as exc:
        connection.execute("ROLLBACK TO write")
        connection.execute("RELEASE write")
        if isinstance(exc, sqlite3.OperationalError):
            return None, StateUnavailable(f"The state database could not be written: {exc}")
        return None, exc
    if isinstance(value, Undo):
        connection.execute("ROLLBACK TO write")
        value = value.value
    connection.execute("RELEASE write")
    return value, None
