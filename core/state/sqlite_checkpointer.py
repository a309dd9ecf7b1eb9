"""WAL checkpoints on a thread of their own, so that none runs inside a commit on the event loop.

SQLite's default (``wal_autocheckpoint=1000``) has the connection that commits past 1000 WAL
pages copy them into the main file then and there, fsyncs included: on the event loop's thread
that stalled every request in flight about 15 ms, once every ~90 served requests (issue 17's
follow-up; p99 and high concurrency, not p50). So the loop's connection turns it off and this
thread, with its own connection to the same file, runs ``PRAGMA wal_checkpoint(PASSIVE)`` every
``interval_s`` (sqlite3 releases the GIL while it works). A PASSIVE checkpoint takes no lock that
writers wait on; one with nothing to copy reads the shared-memory index and returns, no I/O.

Durability is unchanged: a commit is in the WAL before it returns, whoever checkpoints; a
checkpoint only copies committed frames into the main file (fsyncing the WAL first, then the file,
as ``synchronous=NORMAL`` has every checkpoint do).

**Keeping the WAL bounded.** A checkpoint copies frames; the WAL file starts over only when a
writer begins while every frame is copied and no reader still uses them. With the autocheckpoint
that was the committing writer itself, right after its checkpoint; here, under sustained writes,
the loop commits while this thread copies, so some frame is always uncopied when the next write
begins and the WAL would grow without end (measured: 22 MB in 5 s, every PASSIVE complete). When
a checkpoint leaves ``restart_frames`` or more frames in the WAL, the thread runs
``wal_checkpoint(RESTART)`` too: it holds the write lock while it copies what the PASSIVE ones
left (those written meanwhile: a few more PASSIVE ones first catch up) and waits for readers, so
the next write starts the WAL over. A write asked for in
that moment waits for it (a few ms, each ``restart_frames`` pages rather than each 1000); a WAL
that idles is reset by the next write without it. Not TRUNCATE: the file would be regrown frame
by frame; its size stays bounded by ``restart_frames`` and what one interval writes.

Several processes on one file (``--workers``) each run one: a checkpoint another holds makes
this one ``busy``, skipped until the next interval. A failure is logged and tried again at the
next interval; nothing here raises into the gateway.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)

CHECKPOINT_INTERVAL_S = 0.25
RESTART_FRAMES = 4000
"""About 16 MB of 4 KiB pages: a RESTART (a short wait for writers) each 4000 frames of sustained
writes, where the autocheckpoint stalled them each 1000."""
CATCH_UP_PASSES = 3
CATCH_UP_FRAMES = 64
"""Before a RESTART, PASSIVE checkpoints repeat (at most ``CATCH_UP_PASSES``) while each finds at
least this many frames written during the one before: what they copy, writers need not wait for."""
CHECKPOINT_BUSY_TIMEOUT_S = 0.1
"""How long a RESTART waits for the write lock and for readers; it holds the write lock while it
waits for readers, so this bounds what writers wait. Busy past it: tried again next interval."""
STOP_TIMEOUT_S = 2.0


class WalCheckpointer:
    """A daemon thread that checkpoints one database file's WAL until ``stop``."""

    def __init__(self, path: Path, *, interval_s: float = CHECKPOINT_INTERVAL_S,
                 restart_frames: int = RESTART_FRAMES) -> None:
        self._path = path
        self._interval_s = interval_s
        self._restart_frames = restart_frames
        self._stopping = threading.Event()
        self.checkpoints_run = 0
        """Checkpoints that ran without an error (a busy one included): written by the thread alone."""
        self._thread = threading.Thread(target=self._run, name=f"wal-checkpoint {path.name}", daemon=True)
        self._thread.start()

    def stop(self, *, wait: bool = True) -> None:
        """Ends the thread: it finishes the checkpoint under way (bounded by the busy timeout and
        the fsyncs), closes its connection and exits; ``wait``s for that at most ``STOP_TIMEOUT_S``."""
        self._stopping.set()
        if wait and self._thread is not threading.current_thread():
            self._thread.join(STOP_TIMEOUT_S)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while not self._stopping.wait(self._interval_s):
                try:
                    if connection is None:
                        connection = self._connect()
                    self._checkpoint(connection)
                    self.checkpoints_run += 1
                except Exception as exc:  # sqlite3.Error above all; none may end the thread
                    log.warning("WAL checkpoint of %s failed (tried again in %.2f s): %s",
                                self._path, self._interval_s, exc)
                    if connection is not None:
                        connection.close()
                    connection = None
        finally:
            if connection is not None:
                connection.close()

    def _checkpoint(self, connection: sqlite3.Connection) -> None:
        """A PASSIVE checkpoint; if the WAL is long, more PASSIVE ones while they still find many
        frames written during the one before, then a RESTART: it holds the write lock while it
        copies what is left, so it is left as little as can be."""
        _, frames, _ = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if frames < self._restart_frames:
            return
        for _ in range(CATCH_UP_PASSES):
            _, now, _ = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if now - frames < CATCH_UP_FRAMES:
                break
            frames = now
        connection.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()  # busy: tried next interval

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self._path, isolation_level=None, timeout=CHECKPOINT_BUSY_TIMEOUT_S)
        connection.execute("PRAGMA synchronous=NORMAL")  # a checkpoint fsyncs the WAL, then the file
        connection.execute("PRAGMA wal_autocheckpoint=0")  # its close checkpoints; nothing else here does
        return connection
