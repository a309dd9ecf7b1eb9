"""How a ``boltgate serve --workers N`` worker learns that its supervisor is gone: a pipe.

The supervisor makes one pipe before it starts any worker, keeps the write end for life and never
writes to it, and hands each worker the read end. A worker blocks on that read end in a thread;
when the supervisor dies, however it dies (SIGKILL, the OOM killer), the kernel closes the write
end, the read ends see end-of-file, and each worker sends itself SIGTERM: it stops accepting,
finishes the requests in flight and exits, exactly as when the supervisor passes SIGTERM on.
Without it, workers of a killed supervisor would keep serving the port with nobody to replace
them, drain them on the next SIGTERM, or clean up after them.

Why a pipe, and not the alternatives:

- ``prctl(PR_SET_PDEATHSIG)`` fires when the *thread* that forked the worker ends, not the
  process: a supervisor that ever started a worker from another thread would see it killed when
  that thread finishes. It is set by the worker after ``spawn`` has exec'd a fresh interpreter, so
  a supervisor that died before then is missed unless the worker also checks its parent; and it
  is Linux only.
- Polling ``os.getppid()`` (what this replaced) wakes every worker every second, notices a death
  up to a second late, and has the same race at start: a worker whose supervisor died before its
  first look takes its new parent (init, or a container's subreaper) for its supervisor and
  serves on forever.
- The pipe has no race (it exists before the worker: a supervisor already dead is end-of-file at
  the first read), no polling, is tied to the process rather than a thread, and is plain POSIX.
  Only the supervisor may hold the write end: ``spawn`` passes a worker no descriptor but those
  in its arguments (the sockets and this read end), so no worker keeps its siblings' line alive.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from multiprocessing.connection import Connection


def lifeline() -> tuple[Connection, Connection]:
    """``(read end, write end)``: the supervisor keeps the write end open (and referenced) for as
    long as it runs, and passes the read end to each worker it starts."""
    return multiprocessing.Pipe(duplex=False)


def drain_when_cut(read_end: Connection) -> threading.Thread:
    """In a worker: a daemon thread that SIGTERMs this process once the supervisor is gone."""
    watcher = threading.Thread(target=_wait_then_drain, args=(read_end,), daemon=True, name="lifeline")
    watcher.start()
    return watcher


def _wait_then_drain(read_end: Connection) -> None:
    while True:
        try:
            read_end.recv_bytes()  # nothing is ever sent: this returns only at the supervisor's end
        except (EOFError, OSError):
            break
    os.kill(os.getpid(), signal.SIGTERM)  # the drain a supervisor's SIGTERM starts
