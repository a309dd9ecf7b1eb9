"""The ``boltgate`` command: serve, check a config, print prices, run a GPU worker."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from core.logs import configure_logging
    from proxy.api.app import create_app
    from proxy.settings import Settings

    overrides: dict[str, object] = {}
    if args.config:
        overrides["config"] = Path(args.config)
    settings = Settings(**overrides)  # type: ignore[arg-type]
    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    configure_logging(settings.log_level, settings.log_format)
    uvicorn.run(
        create_app(settings), host=host, port=port, loop="uvloop", http="httptools",
        access_log=False, log_config=None, timeout_keep_alive=75,  # boltgate writes its own access lines
    )
    return 0


def _config_check(args: argparse.Namespace) -> int:
    from proxy.settings import Settings

    try:
        settings = Settings(config=Path(args.file))
    except (ValidationError, FileNotFoundError, ValueError) as error:
        print(f"{args.file}: invalid\n{error}", file=sys.stderr)
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
    from proxy.settings import Settings

    settings = Settings(config=Path(args.config)) if args.config else Settings()
    print(render_price_table(PriceCatalog.load(settings.pricing), settings.pricing))
    return 0


def _vendors(_: argparse.Namespace) -> int:
    from backends.capability_table import render_capability_table

    print(render_capability_table())
    return 0


def _worker(args: argparse.Namespace) -> int:
    from backends.local.worker_cli import run_worker

    return run_worker(args)


def _make_tiny(args: argparse.Namespace) -> int:
    from backends.local.tiny import main_make_tiny

    return main_make_tiny(args.dir)


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
    parser = argparse.ArgumentParser(prog="boltgate", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the gateway")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--config", help="routes TOML (or BOLTGATE_CONFIG)")
    serve.set_defaults(run=_serve)

    config = commands.add_parser("config", help="configuration tools")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser("check", help="validate a routes file and print the routes")
    check.add_argument("file")
    check.set_defaults(run=_config_check)

    prices = commands.add_parser("prices", help="print the price catalog and the client price per image")
    prices.add_argument("--config", help="routes/pricing TOML (or BOLTGATE_CONFIG)")
    prices.set_defaults(run=_prices)
    vendors = commands.add_parser("vendors", help="print what each backend can serve (the router's table)")
    vendors.set_defaults(run=_vendors)
    _add_local_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
