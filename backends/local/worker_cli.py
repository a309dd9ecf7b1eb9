"""``boltgate local worker``: run the GPU worker service from the command line.

Every field of ``LocalBackendConfig`` can be set with ``--set name=value`` (``--set
preload_steps=1,4 --set compile_unet=true``); the common ones have their own flags.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from backends.local.config import LocalBackendConfig
from core.errors import ConfigurationError
from core.logs import configure_logging


def build_worker_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The worker's arguments, added to ``parser`` (a CLI subcommand) or to a new parser."""
    parser = parser or argparse.ArgumentParser(prog="boltgate local worker", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--model-dir", help="local model directory (base/ and lightning/); default: the HF hub")
    parser.add_argument("--device", choices=["auto", "cuda", "cpu"])
    parser.add_argument("--preload-steps", help="comma-separated step counts to load at start, e.g. 1,4")
    parser.add_argument("--max-batch-size", type=int)
    parser.add_argument("--compile", action="store_true", help="torch.compile the UNet and the VAE decoder")
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="any LocalBackendConfig field")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--log-format", choices=["human", "json"], default="human",
                        help="the gateway's one log format: readable lines or JSON lines")
    return parser


def config_from_args(args: argparse.Namespace) -> LocalBackendConfig:
    values: dict[str, object] = {}
    for item in args.set:
        name, _, value = item.partition("=")
        values[name.strip()] = value.strip()
    flags = {"model_dir": args.model_dir, "device": args.device, "preload_steps": args.preload_steps,
             "max_batch_size": args.max_batch_size}
    values.update({name: value for name, value in flags.items() if value is not None})
    if args.compile:
        values.update(compile_unet=True, compile_vae=True)
    if args.no_warmup:
        values["warmup"] = False
    return LocalBackendConfig.model_validate(values)


def main_worker(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and serve the worker until interrupted; 2 for an invalid configuration."""
    args = build_worker_parser().parse_args(argv)
    return run_worker(args)


def run_worker(args: argparse.Namespace) -> int:
    """Serve with already-parsed arguments (for a CLI that adds ``build_worker_parser`` as a subcommand)."""
    try:
        config = config_from_args(args)
    except ValidationError as error:
        print(f"invalid worker configuration:\n{error}", file=sys.stderr)
        return 2
    configure_logging(args.log_level, args.log_format)
    from backends.local.worker_app import serve_worker

    try:
        serve_worker(config, args.host, args.port)
    except ConfigurationError as error:
        print(f"the worker cannot start: {error.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main_worker())
