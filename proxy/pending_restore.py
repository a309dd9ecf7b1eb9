"""``boltgate state restore --pending``: the restore a pod makes before its gateway starts.

In Kubernetes the embedded store lives on a volume that only the gateway's pod mounts, so the
operator had no place to run ``state restore`` with the gateway stopped: scaling the deployment
to 0 leaves no pod to run it in, and a pod of one's own on the claim is a page of overrides. The
chart (``state.sqlite.restoreOnStart``) runs this in an init container of the gateway's pod,
before the gateway opens the store. Restoring is then two steps: copy the backup onto the volume
as ``restore.sqlite3`` (``kubectl cp`` into the running pod), and restart the deployment
(``kubectl rollout restart``: in the chart's sqlite mode the old pod is stopped first,
``Recreate``). What the init container does:

- no ``restore.sqlite3``: nothing (every other start);
- restored: the file is renamed ``restore.sqlite3.restored-<UTC time>``, so the next start does
  not restore it again;
- refused as a backup (not a sound boltgate store): it is renamed ``restore.sqlite3.refused-<UTC
  time>`` and the command exits 1, so the pod shows the failed init container and its log says
  why; the kubelet runs it again, which finds nothing pending, and the gateway starts on the store
  it had, unchanged;
- the store still open (another process has it: ``StoreInUse``): exit 1 with the file left where
  it is, to be tried again when the kubelet restarts the init container.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from core.errors import BackupRefused, PendingRefused
from proxy.state_restore import Restore, restore

PENDING_NAME = "restore.sqlite3"
RESTORED_SUFFIX = ".restored-"
REFUSED_SUFFIX = ".refused-"


@dataclass(frozen=True)
class PendingRestore:
    source: Path
    restored: Restore | None
    """None when there was nothing pending."""
    moved_to: Path | None
    """Where the pending file went once restored."""


def restore_pending(live: Path, *, keep_replaced: bool = True) -> PendingRestore:
    """Restore ``restore.sqlite3`` beside ``live`` (the store's file) if there is one. Raises
    ``PendingRefused`` (the file moved aside) or what ``restore`` raises otherwise, the file left
    (``StoreInUse``, an ``OSError``...)."""
    source = live.with_name(PENDING_NAME)
    if not source.exists():
        return PendingRestore(source, None, None)
    try:
        restored = restore(source, live, keep_replaced=keep_replaced)
    except BackupRefused as error:  # the file's fault; anything else (the store in use, a disk) is tried again
        moved = _aside(source, REFUSED_SUFFIX)
        raise PendingRefused(f"{error.message}; moved to {moved.name} so that the gateway starts on the store it "
                             "had", moved) from error
    return PendingRestore(source, restored, _aside(source, RESTORED_SUFFIX))


def _aside(source: Path, suffix: str) -> Path:
    moved = source.with_name(f"{source.name}{suffix}{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
    source.replace(moved)
    return moved
