"""The ``boltgate`` command: serve, check a config, print prices and capabilities, verify a webhook,
run a GPU worker, generate in bulk.

Every command that reads the settings reads them through ``read_settings``, so a file that is not
TOML, a ``BOLTGATE_*`` value of the wrong kind or a typo in a route is one readable message and
exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from core.errors import ConfigurationError

DESCRIPTION = """\
boltgate: one OpenAI-compatible endpoint for SDXL-Lightning image generation, routed across
hosted vendors and your own GPUs.

With no vendor key set, `boltgate serve` routes to built-in vendor simulators, so every
feature can be tried on a fresh machine."""

EPILOG = """\
settings: environment variables BOLTGATE_* (nested with __) over a TOML file named by
--config or BOLTGATE_CONFIG; a route is enabled when its key variable is set.

examples:
  boltgate serve                               serve on http://127.0.0.1:8000
  boltgate serve --config routes.toml --log-level debug
  boltgate config check routes.toml            validate a file, print the routes it enables
  boltgate prices                              the catalog and what a client pays per image
  boltgate usage export --since 2026-11-01     every charge since then, as CSV
  boltgate voids make gateway.log              make the voids a lost pod's logs say it owed
  boltgate state backup /backups/b.sqlite3     the keys, spend and charge log, safely while serving
  boltgate state restore /backups/b.sqlite3    put a backup in place (every gateway on data_dir stopped)
  boltgate state restore --pending             restore data_dir/restore.sqlite3 if there (the chart's init container)
  boltgate vendors                             what each backend serves, what its docs confirm"""


INTERRUPTED = 130
"""The exit status after Ctrl-C (SIGINT), as a shell reports it: without a traceback."""
READER_GONE = 141
"""The exit status when whoever read the output stopped first (``| head``): a shell tool's,
killed by SIGPIPE (128 + 13), so ``set -o pipefail`` still sees an output not read to its end."""


def _serve(args: argparse.Namespace) -> int:
    from core.logs import configure_logging
    from proxy.serving.listening import bind, bound_port, where
    from proxy.serving.run import drain_seconds, serve
    from proxy.serving.supervisor import Supervisor
    from proxy.serving.workers import parse_workers, refusal
    from proxy.settings_reader import check_prices, read_settings

    flags = {"log_level": args.log_level, "public_base_url": args.public_base_url}
    values: dict[str, object] = {name: value for name, value in flags.items() if value is not None}
    settings = read_settings(args.config, **values)
    check_prices(settings)
    try:
        workers = parse_workers(args.workers if args.workers is not None else settings.workers)
    except ValueError as error:
        print(f"boltgate serve: {error}", file=sys.stderr)
        return 2
    problem = refusal(settings.state_backend, workers)
    if problem is not None:
        print(f"boltgate serve: {problem}", file=sys.stderr)
        return 2
    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    try:  # before anything starts, however many workers: a port taken is one line, not a started gateway's logs
        sockets = bind(host, port)
    except OSError as error:  # the port taken on one of the host's addresses, or an address not this machine's
        print(f"boltgate serve: cannot listen on {where(host, port)}: {error.strerror or error}", file=sys.stderr)
        return 1
    port = bound_port(sockets)  # the kernel's pick, for --port 0
    configure_logging(settings.log_level, settings.log_format)
    if workers == 1:
        serve(settings.model_copy(update={"workers": 1}), host, port, sockets)
        return 0
    overrides = {**values, "workers": workers}
    if args.config:
        overrides["config"] = Path(args.config)
    return Supervisor(overrides, sockets, host, port, workers, drain_s=drain_seconds(settings) + 5).run()


def _config_check(args: argparse.Namespace) -> int:
    from proxy.settings_reader import read_settings

    try:
        settings = read_settings(args.file)
    except ConfigurationError as error:
        print(f"{args.file}: invalid\n{error.message}", file=sys.stderr)
        return 1
    print(f"{args.file}: valid; policy={settings.routing_policy}, deadline={settings.deadline_s}s, "
          f"state={settings.state_backend}")
    for route in sorted(settings.routes, key=lambda r: r.priority):
        state = "enabled" if route.is_enabled else f"disabled (set {route.key_variable})"
        if not route.enabled:
            state = "disabled in the file"
        print(f"- {route.vendor}: priority {route.priority}, weight {route.weight}, "
              f"timeout {route.timeout_s}s, {route.max_attempts} attempts, key ${route.key_variable}: {state}")
        for region in route.regions:
            print(f"    {region.name}: {region.base_url}")
    if not settings.enabled_routes():
        print("no route is enabled: `boltgate serve` would use the built-in vendor simulators")
    return 0


def _prices(args: argparse.Namespace) -> int:
    from pricing.catalog import PriceCatalog
    from pricing.report import render_price_table
    from proxy.settings_reader import read_settings

    settings = read_settings(args.config)
    print(render_price_table(PriceCatalog.load(settings.pricing), settings.pricing))
    return 0


def _usage_export(args: argparse.Namespace) -> int:
    import asyncio

    from core.errors import BoltgateError
    from proxy.settings_reader import read_settings
    from proxy.usage_export import export_charges

    settings = read_settings(args.config)
    try:
        asyncio.run(export_charges(settings, args.since, args.format, sys.stdout))
        sys.stdout.flush()  # the last page's end, while a closed pipe can still be answered here
    except (BoltgateError, ValueError) as error:
        print(f"usage export: {getattr(error, 'message', error)}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return _reader_gone()
    return 0


def _reader_gone() -> int:
    """The reader of stdout closed it (``boltgate usage export | head``): end quietly, as Python's
    docs advise (``signal``, "Note on SIGPIPE"): stdout pointed at devnull, so that the flush at
    exit of what is still buffered finds nowhere to fail and prints no second traceback."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return READER_GONE


def _state(args: argparse.Namespace) -> int:
    """``boltgate state backup|restore``: ``proxy.state_commands``, imported only when run."""
    from proxy.state_commands import run

    return run(args)


def _voids_list(args: argparse.Namespace) -> int:
    from proxy.settings_reader import read_settings
    from proxy.void_command import loss_named, owed_files, void_named

    settings = read_settings(args.config)
    try:
        files = owed_files(settings)
    except ValueError as error:
        print(f"voids list: {error}", file=sys.stderr)
        return 1
    owed = [(file, pending) for file in files for pending in file.owed]
    for file, pending in owed:
        owner = "a running process's, made when the store answers" if file.running else "a gone process's"
        print(f"{void_named(pending)}: {owner}, in {file.path}")
    losses = [(file, loss) for file in files for loss in file.losses]
    for file, loss in losses:
        owner = "a running process's, booked when the store answers" if file.running else "a gone process's"
        print(f"{loss_named(loss)}: {owner}, in {file.path}")
    print(f"{len(owed)} voids owed under {settings.data_dir}" + (f", {len(losses)} losses" if losses else ""))
    return 0


def _voids_make(args: argparse.Namespace) -> int:
    import asyncio

    from proxy.settings_reader import read_settings
    from proxy.void_command import made_summary, make_gone_processes_voids, make_voids, owed_from_logs, refuse_memory

    settings = read_settings(args.config)
    try:
        refuse_memory(settings)
        if args.files:
            owed, losses = [], []
            for name in args.files:
                with _lines_of(name) as lines:
                    found = owed_from_logs(lines, name)
                owed += found.voids
                losses += found.losses
            made = asyncio.run(make_voids(settings, owed, losses))
        else:
            made = asyncio.run(make_gone_processes_voids(settings))
    except (OSError, ValueError) as error:
        print(f"voids make: {error}", file=sys.stderr)
        return 1
    for one in made:
        print(one.describe())
    print(made_summary(made))
    return 0 if all(one.made for one in made) else 1


@contextlib.contextmanager
def _lines_of(name: str) -> Iterator[IO[bytes]]:
    """A file, or stdin for ``-``, to read line by line: a gateway's log can be gigabytes, and only
    the lines that name a void owed are kept."""
    if name == "-":
        yield sys.stdin.buffer
        return
    with Path(name).open("rb") as file:
        yield file


def _vendors(_: argparse.Namespace) -> int:
    from backends.capability_table import render_behaviour_table, render_capability_table

    print("What each backend can serve (the router's table):\n")
    print(render_capability_table())
    print("\nWhat each adapter relies on, confirmed by the vendor's documentation or assumed:\n")
    print(render_behaviour_table())
    return 0


def _webhooks_verify(args: argparse.Namespace) -> int:
    """Exit 0 when the body (a file, or stdin) carries a valid signature, 1 when it does not."""
    import os

    from proxy.jobs.signature import verify_signature

    secret = os.environ.get(args.secret_env)
    if not secret:
        print(f"set {args.secret_env} to the key's webhook secret (GET /v1/webhooks/secret)", file=sys.stderr)
        return 2
    body = Path(args.body).read_bytes() if args.body else sys.stdin.buffer.read()
    if verify_signature(secret, body, args.signature, tolerance_s=args.tolerance):
        print("valid")
        return 0
    print("invalid: the signature does not match this body and secret, or its timestamp is too old")
    return 1


def _worker(args: argparse.Namespace) -> int:
    from backends.local.worker_cli import run_worker

    return run_worker(args)


def _make_tiny(args: argparse.Namespace) -> int:
    from backends.local.tiny import main_make_tiny

    return main_make_tiny(args.dir)


def _generate(args: argparse.Namespace) -> int:
    from proxy.bulk.command import run_generate

    return run_generate(args)


def _add_local_commands(commands: Any) -> None:
    """The self-hosted backend: ``boltgate worker`` (also ``boltgate local worker``) and
    ``boltgate local make-tiny DIR``. Their modules import torch only when run."""
    from backends.local.worker_cli import build_worker_parser

    worker = commands.add_parser("worker", help="serve the SDXL-Lightning pipeline as a GPU worker")
    build_worker_parser(worker).set_defaults(run=_worker)
    local = commands.add_parser("local", help="the self-hosted SDXL-Lightning backend")
    local_commands = local.add_subparsers(dest="local_command", required=True)
    build_worker_parser(local_commands.add_parser("worker", help="same as `boltgate worker`")).set_defaults(
        run=_worker)
    tiny = local_commands.add_parser("make-tiny", help="write a tiny SDXL-shaped model (tests, CPU demo)")
    tiny.add_argument("dir")
    tiny.set_defaults(run=_make_tiny)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="boltgate", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the gateway", description="Serve the gateway.")
    serve.add_argument("--host", help="address to listen on, or a name: every address it resolves to, e.g. "
                       "localhost's 127.0.0.1 and ::1 (default: the host setting, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: the port setting, 8000)")
    serve.add_argument("--config", metavar="FILE", help="settings TOML (default: BOLTGATE_CONFIG)")
    serve.add_argument("--log-level", choices=["critical", "error", "warning", "info", "debug"],
                       help="log level (default: the log_level setting, info)")
    serve.add_argument("--public-base-url", metavar="URL",
                       help="base of the image URLs handed to clients, e.g. https://images.example.com "
                            "(default: the URL the client called)")
    serve.add_argument("--workers", help="worker processes on the port: a number, or 'auto' for the CPUs "
                       "the container may use (default 1, or BOLTGATE_WORKERS)")
    serve.set_defaults(run=_serve)

    config = commands.add_parser("config", help="configuration tools", description="Configuration tools.")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="COMMAND")
    check = config_commands.add_parser("check", help="validate a settings file and print the routes it enables")
    check.add_argument("file")
    check.set_defaults(run=_config_check)

    prices = commands.add_parser("prices", help="print the price catalog and the client price per image")
    prices.add_argument("--config", metavar="FILE", help="settings TOML (default: BOLTGATE_CONFIG)")
    prices.set_defaults(run=_prices)
    usage = commands.add_parser("usage", help="the charge log, to reconcile vendor invoices")
    usage_commands = usage.add_subparsers(dest="usage_command", required=True, metavar="COMMAND")
    export = usage_commands.add_parser("export", help="print every charge since a date (CSV or JSON lines)")
    export.add_argument("--since", metavar="WHEN",
                        help="RFC 3339 date or date-time, e.g. 2026-11-01 (default: the start of this month, UTC)")
    export.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    export.add_argument("--config", metavar="FILE",
                        help="settings TOML (default: BOLTGATE_CONFIG): which state store to read")
    export.set_defaults(run=_usage_export)
    state = commands.add_parser(
        "state", help="the embedded store's file: back it up while the gateway runs, restore a backup")
    state_commands = state.add_subparsers(dest="state_command", required=True, metavar="COMMAND")
    backup = state_commands.add_parser(
        "backup", help="copy the embedded store (keys, spend, the charge log) as of one commit, safely while "
                       "the gateway runs")
    backup.add_argument("dest", metavar="DEST", help="the backup file to write (one self-contained SQLite file)")
    backup.add_argument("--force", action="store_true", help="replace DEST if it exists")
    backup.add_argument("--config", metavar="FILE",
                        help="settings TOML (default: BOLTGATE_CONFIG): where the store is (data_dir)")
    backup.set_defaults(run=_state)
    restore = state_commands.add_parser(
        "restore", help="make a backup the embedded store, with every gateway on data_dir stopped (refused while "
                        "one runs); the replaced file is kept beside it")
    restore.add_argument("source", metavar="SOURCE", nargs="?", help="a backup made by boltgate state backup")
    restore.add_argument("--pending", action="store_true",
                         help="restore data_dir/restore.sqlite3 if it is there, then move it aside (what the Helm "
                              "chart's init container runs before the gateway starts)")
    restore.add_argument("--discard-replaced", action="store_true",
                         help="do not keep the replaced store (default: kept as boltgate.sqlite3.before-restore-TIME)")
    restore.add_argument("--config", metavar="FILE",
                         help="settings TOML (default: BOLTGATE_CONFIG): where the store is (data_dir)")
    restore.set_defaults(run=_state)
    voids = commands.add_parser(
        "voids", help="voids owed for requests answered 503 after an unconfirmed charge: list them, make them",
        description="Voids owed for requests answered 503 after their charge went unconfirmed (the state store "
                    "did not answer), and the gateway's losses the store did not book. A gateway makes them "
                    "itself; these are for a data directory no gateway will start on again, or one that is gone "
                    "(then from the logs).")
    voids_commands = voids.add_subparsers(dest="voids_command", required=True, metavar="COMMAND")
    voids_list = voids_commands.add_parser("list", help="what is owed under the data directory, and by whom")
    voids_list.add_argument("--config", metavar="FILE", help="settings TOML (default: BOLTGATE_CONFIG)")
    voids_list.set_defaults(run=_voids_list)
    voids_make = voids_commands.add_parser(
        "make", help="make the voids (and book the losses) gone processes owed under the data directory, or "
                     "those in log files")
    voids_make.add_argument("--config", metavar="FILE",
                            help="settings TOML (default: BOLTGATE_CONFIG): which state store to void in")
    voids_make.add_argument("files", nargs="*", metavar="FILE",
                            help="gateway logs (either format) or journal files holding the voids owed; - for "
                                 "stdin (default: the data directory's files of gone processes)")
    voids_make.set_defaults(run=_voids_make)
    vendors = commands.add_parser(
        "vendors", help="print each backend's limits and which vendor behaviours are confirmed or assumed")
    vendors.set_defaults(run=_vendors)
    webhooks = commands.add_parser("webhooks", help="job webhook tools")
    webhook_commands = webhooks.add_subparsers(dest="webhooks_command", required=True)
    verify = webhook_commands.add_parser("verify", help="check a webhook's Boltgate-Signature against its body")
    verify.add_argument("--signature", required=True, help="the Boltgate-Signature header's value (t=...,v1=...)")
    verify.add_argument("--secret-env", default="BOLTGATE_WEBHOOK_SECRET",
                        help="environment variable holding the secret (default: BOLTGATE_WEBHOOK_SECRET)")
    verify.add_argument("--tolerance", type=float, default=300.0, help="oldest timestamp accepted, in seconds")
    verify.add_argument("body", nargs="?", help="file with the raw body as received (default: stdin)")
    verify.set_defaults(run=_webhooks_verify)
    from proxy.bulk.command import build_generate_parser

    generate = commands.add_parser("generate", help="generate images from a running gateway, many prompts at once")
    build_generate_parser(generate).set_defaults(run=_generate)
    _add_local_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.run(args)
    except ConfigurationError as error:
        print(f"boltgate: {error.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: `serve` has drained and shut down by now (uvicorn raises it after)
        return INTERRUPTED
    return result


if __name__ == "__main__":
    sys.exit(main())
