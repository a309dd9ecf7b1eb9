"""Voids and losses owed to the state store, written down on local disk, so that those of a killed
process are made by the next.

A void is owed when a settle went unconfirmed (``proxy.unconfirmed_charges``): the state store did
not answer, so the debt cannot be written there. It used to live only in the process's memory,
and a process killed before the store came back (an OOM kill, a liveness probe, a SIGKILL at the
end of a rollout's grace) left the client charged for a request answered 503. Now each process
appends what it owes to a file of its own under ``data_dir/owed-voids/`` and marks each one paid
once it is made; a process starting on the same directory (the same pod's next container: the
chart mounts it from an ``emptyDir``, which outlives container restarts) takes over the files of
processes that are gone and makes their voids.

Which files are a gone process's: each process holds an exclusive ``flock`` on its own file for as
long as it runs, and the kernel drops the lock when the process dies, however it dies. A file is
created under a temporary name and renamed once locked, so no other process can take it for a
dead one in between.

Durability: lines are written (``write``), not fsynced. What a killed *process* wrote is in the
page cache and reaches the file; an OS crash can lose the last lines, as it can the embedded
store's last commits (``core.state.sqlite_database``). The path is rare (the store down), so the
writes are made on the event loop's thread. A void made twice is harmless (``LedgerStore.void``
is idempotent, and its loss is booked once per request), so a ``paid`` line lost to a kill only
makes the next start try a void that is already made.

Losses are owed the same way (``proxy.owed_losses``): a loss the store did not book is written
``{"owe_loss": ...}`` in the same file and marked paid (by its event id) once booked; each carries
its ledger event id from its first try, so a ``paid`` line lost to a kill books nothing twice.

A directory that cannot be written leaves the voids in memory, as before, with a warning: the
gateway never stops serving for it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import orjson

from proxy.billing import PendingCharge
from proxy.kept_charge import kept_charge_from_fields, kept_charge_json
from proxy.owed_losses import OWE_LOSS, OwedLoss, owed_loss_from_fields, owed_loss_line

log = logging.getLogger(__name__)

OWED_VOIDS_DIRECTORY = "owed-voids"
"""Under ``data_dir``."""
SUFFIX = ".jsonl"
OWED_VOID_FIELD = "owed_void"
"""The structured field of the gateway's log records about a void owed: the journal's line."""
STALE_TMP_S = 60.0
"""A file still under its temporary name this long after it was made is a killed process's (it
was empty: nothing is written before the rename), removed like the files of gone processes."""


@dataclass(slots=True)
class Inherited:
    """The voids and losses a gone process still owed, and its files, locked until they are forgotten."""

    owed: list[PendingCharge] = field(default_factory=list)
    losses: list[OwedLoss] = field(default_factory=list)
    files: list[tuple[Path, IO[bytes]]] = field(default_factory=list)


class OwedVoidsJournal:
    """This process's file of voids owed, under ``directory``; created at the first one."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        self._unwritable = False

    @property
    def writing(self) -> bool:
        """Whether what this process owes is written down (its file is open)."""
        return self._file is not None

    def owe(self, pending: PendingCharge) -> None:
        """Write ``pending`` down as owed (logged, not raised, when the disk refuses)."""
        self._append(owed_line(pending), f"owed void of request {pending.settlement.reservation.reservation_id}")

    def owe_loss(self, loss: OwedLoss) -> None:
        """Write ``loss`` down as owed (logged, not raised, when the disk refuses)."""
        self._append(owed_loss_line(loss), f"owed loss {loss.event_id}")

    def paid(self, owed: PendingCharge | OwedLoss) -> None:
        """Mark ``owed`` made: a void (by its request id) or a loss booked (by its event id)."""
        if self._file is not None:
            self._append(orjson.dumps({"paid": owed_id(owed)}), "paid line")

    def close(self, *, still_owed: bool) -> None:
        """Close this process's file: removed when nothing is owed, else left for the next start."""
        if self._file is None:
            return
        if not still_owed and self._path is not None:
            self._path.unlink(missing_ok=True)
        self._file.close()  # the lock goes with it
        self._file = None

    def inherit(self) -> Inherited:
        """The voids owed in the files of processes that are gone (each file locked, so no other
        process starting at the same time makes them too). ``forget`` them once they are owed here."""
        inherited = Inherited()
        try:
            candidates = sorted(self.directory.glob(f"*{SUFFIX}")) + [
                path for path in self.directory.glob("*.tmp") if _older_than(path, STALE_TMP_S)]
        except OSError as error:
            log.warning("cannot read %s for voids owed by a gone process: %s", self.directory, error)
            return inherited
        for path in candidates:
            if path == self._path:
                continue
            try:
                file = path.open("rb")
            except OSError:
                continue  # taken and removed by another process meanwhile
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                content = file.read()
            except OSError as error:  # BlockingIOError: a live process's own file
                file.close()
                if not isinstance(error, BlockingIOError):
                    log.warning("cannot read %s for voids owed by a gone process: %s", path, error)
                continue
            entries = owed_entries(content.splitlines(), origin=str(path))
            inherited.owed.extend(entries.voids)
            inherited.losses.extend(entries.losses)
            inherited.files.append((path, file))
        return inherited

    def owed_here(self) -> list[OwedFile]:
        """Every file under the directory and what it owes, each with whether its process still
        runs (its lock held); nothing taken over, nothing changed."""
        owed_files: list[OwedFile] = []
        try:
            paths = sorted(self.directory.glob(f"*{SUFFIX}")) + sorted(self.directory.glob("*.tmp"))
        except OSError as error:
            log.warning("cannot read %s for voids owed: %s", self.directory, error)
            return owed_files
        for path in paths:
            try:
                with path.open("rb") as file:
                    running = _locked_by_another(file)
                    content = file.read()
            except OSError:
                continue  # taken and removed meanwhile
            entries = owed_entries(content.splitlines(), origin=str(path))
            owed_files.append(OwedFile(path, running, entries.voids, entries.losses))
        return owed_files

    @staticmethod
    def let_go(inherited: Inherited) -> None:
        """Unlock the gone processes' files, left as they are for a later start or try."""
        for _, file in inherited.files:
            file.close()
        inherited.files.clear()

    @staticmethod
    def forget(inherited: Inherited) -> None:
        """Remove the gone processes' files: what they owed is owed (and written down) here now.
        Each is removed while still locked, then let go, so no other start takes it meanwhile."""
        for path, _ in inherited.files:
            try:
                path.unlink(missing_ok=True)
            except OSError as error:  # left: the next start takes it again, and a void made twice is harmless
                log.warning("cannot remove %s: %s", path, error)
        OwedVoidsJournal.let_go(inherited)

    def _append(self, line: bytes, what: str) -> None:
        try:
            file = self._own_file()
            if file is None:
                return
            file.write(line + b"\n")
            file.flush()
        except OSError as error:
            log.error("could not write the %s to %s: %s (it is owed in memory only)", what, self.directory, error)

    def _own_file(self) -> IO[bytes] | None:
        if self._file is not None or self._unwritable:
            return self._file
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            name = f"{os.getpid()}-{secrets.token_hex(6)}"
            making = self.directory / f"{name}.tmp"
            file = making.open("xb")
            fcntl.flock(file, fcntl.LOCK_EX)  # held until this process closes it or dies
            self._path = making.rename(self.directory / f"{name}{SUFFIX}")
        except OSError as error:
            self._unwritable = True
            log.warning("voids and losses owed cannot be written down under %s (%s): they are kept in memory "
                        "only, and a process killed while it owes one leaves it to an operator", self.directory, error)
            return None
        self._file = file
        return file


@dataclass(frozen=True, slots=True)
class OwedFile:
    """One process's file: where it is, whether that process still runs, what it owes."""

    path: Path
    running: bool
    owed: list[PendingCharge]
    losses: list[OwedLoss] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class OwedEntries:
    """What a journal's lines owe and not as paid, each kind in the order owed."""

    voids: list[PendingCharge]
    losses: list[OwedLoss]


def owed_id(owed: PendingCharge | OwedLoss) -> str:
    """What a ``paid`` line names: a void's request id, a loss's event id (never one another's:
    a loss's is ``undelivered:<request id>`` or ``loss:<random>``)."""
    return owed.event_id if isinstance(owed, OwedLoss) else owed.settlement.reservation.reservation_id


def owed_line(pending: PendingCharge) -> bytes:
    """``pending`` as the journal writes it owed: ``{"owe": <the kept charge>}`` (the line the
    gateway's logs also carry, for ``boltgate voids make`` to read back)."""
    return b'{"owe":' + kept_charge_json(pending) + b"}"


def owed_in(lines: Iterable[bytes], *, origin: str) -> list[PendingCharge]:
    """The charges ``lines`` list as owed and not as paid, in the order owed (``owed_entries``)."""
    return owed_entries(lines, origin=origin).voids


def owed_entries(lines: Iterable[bytes], *, origin: str) -> OwedEntries:
    """The voids and losses ``lines`` list as owed and not as paid. A line cut short by a kill, or
    one that cannot be read, is logged (naming ``origin``) and skipped."""
    owed: dict[str, PendingCharge | OwedLoss] = {}
    for number, raw in enumerate(lines, start=1):
        try:
            line = orjson.loads(raw)
            if "paid" in line:
                owed.pop(str(line["paid"]), None)
                continue
            entry = owed_loss_from_fields(line[OWE_LOSS]) if OWE_LOSS in line else kept_charge_from_fields(line["owe"])
        except (ValueError, KeyError, TypeError) as error:  # a line, or its "owe", of another shape
            log.error("%s line %d is not a void owed nor a loss owed (%s): %r", origin, number, error, raw[:300])
            continue
        owed[owed_id(entry)] = entry
    return OwedEntries([entry for entry in owed.values() if not isinstance(entry, OwedLoss)],
                       [entry for entry in owed.values() if isinstance(entry, OwedLoss)])


def _locked_by_another(file: IO[bytes]) -> bool:
    """Whether another process holds ``file``'s lock (a running gateway's file). A lock taken
    here to find out is let go at once."""
    try:
        fcntl.flock(file, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(file, fcntl.LOCK_UN)
    return False


def _older_than(path: Path, seconds: float) -> bool:
    try:
        return path.stat().st_mtime < time.time() - seconds
    except OSError:  # removed meanwhile
        return False
