"""The ``boltgate state`` commands: what each prints and its exit status (the work is in
``proxy.state_backup``, ``proxy.state_restore`` and ``proxy.pending_restore``)."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

from proxy.settings_reader import read_settings


def run(args: argparse.Namespace) -> int:
    return state_backup(args) if args.state_command == "backup" else state_restore(args)


def state_backup(args: argparse.Namespace) -> int:
    from proxy.state_backup import back_up, database_path
    from proxy.wiring import images_on_disk

    settings = read_settings(args.config)
    try:
        backup = back_up(database_path(settings), Path(args.dest), overwrite=args.force,
                         busy_timeout_s=max(10.0, settings.state_timeout_s))
    except (ValueError, OSError, sqlite3.Error) as error:
        print(f"state backup: {error}", file=sys.stderr)
        return 1
    print(f"backed up {settings.data_dir} to {backup.path}: {backup.bytes} bytes, integrity ok, "
          f"{backup.charges} charges in the log")
    if images_on_disk(settings):
        print("images handed out as URLs are files in the image directory: copy it as it is if they must "
              "outlive a restore (each expires image_ttl_s after it was made)")
    return 0


def state_restore(args: argparse.Namespace) -> int:
    from core.errors import PendingRefused, StateCommandRefused
    from proxy.pending_restore import restore_pending
    from proxy.state_restore import IMAGES_NOTE, restore, store_file

    if (args.source is None) != args.pending:
        print("state restore: give a SOURCE file or --pending, not both", file=sys.stderr)
        return 2
    settings = read_settings(args.config)
    keep = not args.discard_replaced
    try:
        live = store_file(settings)
        if args.pending:
            pending = restore_pending(live, keep_replaced=keep)
            source, restored, moved_to = pending.source, pending.restored, pending.moved_to
        else:
            source, moved_to = Path(args.source), None
            restored = restore(source, live, keep_replaced=keep)
    except PendingRefused as error:
        print(f"state restore: {error}; the store was not changed", file=sys.stderr)
        return 1
    except (StateCommandRefused, ValueError, OSError, sqlite3.Error) as error:
        print(f"state restore: {error}; nothing was changed", file=sys.stderr)
        return 1
    if restored is None:
        print(f"state restore: no {source} to restore; nothing to do")
        return 0
    print(f"restored {source} into {restored.path}: {restored.bytes} bytes, integrity ok, "
          f"{restored.charges} charges in the log, {restored.keys} stored keys")
    if moved_to is not None:
        print(f"{source.name} is moved aside, so that the next start does not restore it again: {moved_to}")
    if restored.kept is not None:
        print(f"the replaced store is kept as {restored.kept} (delete it once the restore is checked)")
    print(f"{IMAGES_NOTE}. Spend and charges made after the backup are not in it: the charge log of the vendor's "
          "invoice period says what to add back")
    return 0
