"""``boltgate generate``: many images from a running gateway, from a shell.

The gateway's address and key come from ``--url``/``--api-key``, else ``BOLTGATE_URL`` /
``BOLTGATE_API_KEY``, else ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` (a trailing ``/v1`` is
dropped), else ``http://127.0.0.1:8000`` with no key. Exit codes are in ``summary.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from core.errors import BulkInputError
from proxy.bulk.answer import MiB
from proxy.bulk.prompts import BulkPrompt, plan_prompts, read_prompt_file
from proxy.bulk.retry import RetryPolicy
from proxy.bulk.run import GatewayConnection, run_bulk
from proxy.bulk.summary import EXIT_ALL_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, RunSummary

DEFAULT_URL = "http://127.0.0.1:8000"
SHOWN_FAILURES = 20


EPILOG = f"""\
A prompts file holds one prompt per line, or JSON objects with per-line options, e.g.
  {{"prompt": "a red fox", "name": "fox", "n": 2, "size": "768x768", "steps": 4, "seed": 7,
   "negative_prompt": "blurry", "output_format": "webp"}}
Blank lines and lines starting with # are skipped. A prompt whose files exist is skipped, so a
rerun resumes; each prompt keeps one Idempotency-Key, so a retry or rerun is never paid twice.

exit codes: {EXIT_OK} every prompt done, {EXIT_PARTIAL} some failed, {EXIT_ALL_FAILED} every prompt failed,
{EXIT_USAGE} bad flags or prompts file (nothing sent) or an unusable output directory,
{EXIT_INTERRUPTED} interrupted.
"""


def build_generate_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = "Generate images from a running gateway, one prompt or a file of them."
    parser.epilog = EPILOG
    parser.add_argument("prompt", nargs="?", help="one prompt (or use --prompts FILE)")
    parser.add_argument("--prompts", type=Path, metavar="FILE",
                        help="one prompt per line, or JSON lines with per-line options")
    parser.add_argument("-o", "--out", type=Path, required=True, metavar="DIR", help="where images are written")
    parser.add_argument("-n", type=int, help="images per prompt (default 1)")
    parser.add_argument("--size", help="WIDTHxHEIGHT (default 1024x1024)")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--negative-prompt")
    parser.add_argument("--format", dest="output_format", choices=["png", "jpeg", "webp"])
    parser.add_argument("--model")
    parser.add_argument("--name", help="file name stem for the single prompt")
    parser.add_argument("--url", help="the gateway (or BOLTGATE_URL, OPENAI_BASE_URL)")
    parser.add_argument("--api-key", help="the key (prefer BOLTGATE_API_KEY: flags show in process lists)")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight at once (default 4)")
    parser.add_argument("--retries", type=int, default=4, help="tries after the first (default 4)")
    parser.add_argument("--backoff", type=float, default=1.0, help="first retry wait in seconds (default 1)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per try (default 180)")
    parser.add_argument("--max-answer-mb", type=float, metavar="MB",
                        help="read at most this much of one answer (default: what the prompt's n images of "
                             "its size could take uncompressed, about 6.4 MB for one 1024x1024)")
    parser.add_argument("--salt", default="", help="mixed into every Idempotency-Key: new images for old prompts")
    parser.add_argument("--summary-json", type=Path, metavar="FILE", help="also write the summary as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def resolve_connection(args: argparse.Namespace, environ: dict[str, str]) -> GatewayConnection:
    """The gateway and key. ``OPENAI_API_KEY`` is used only with ``OPENAI_BASE_URL``: many shells
    hold an OpenAI key, and it must not be sent to a gateway named some other way."""
    url = args.url or environ.get("BOLTGATE_URL")
    key = args.api_key or environ.get("BOLTGATE_API_KEY")
    if url is None and environ.get("OPENAI_BASE_URL"):
        url = environ["OPENAI_BASE_URL"]
        key = key or environ.get("OPENAI_API_KEY")
    url = (url or DEFAULT_URL).strip().rstrip("/").removesuffix("/v1")
    if not url.startswith(("http://", "https://")):
        raise BulkInputError(f"the gateway URL must start with http:// or https://, not {url!r}")
    cap = None if args.max_answer_mb is None else int(args.max_answer_mb * MiB)
    return GatewayConnection(base_url=url, api_key=key or None, timeout_s=args.timeout, max_answer_bytes=cap)


def _check_numbers(args: argparse.Namespace) -> None:
    if args.concurrency < 1:
        raise BulkInputError("--concurrency must be at least 1")
    if args.retries < 0 or args.backoff < 0 or args.timeout <= 0:
        raise BulkInputError("--retries and --backoff must not be negative, --timeout must be positive")
    if args.max_answer_mb is not None and not 1 <= args.max_answer_mb * MiB < 2**53:
        raise BulkInputError("--max-answer-mb must be a positive number of megabytes")


def _planned(args: argparse.Namespace) -> list[BulkPrompt]:
    if (args.prompt is None) == (args.prompts is None):
        raise BulkInputError("give one prompt or --prompts FILE (not both)")
    flags = {"n": args.n, "size": args.size, "steps": args.steps, "seed": args.seed,
             "negative_prompt": args.negative_prompt, "output_format": args.output_format, "model": args.model}
    defaults = {name: value for name, value in flags.items() if value is not None}
    if args.prompts is not None:
        if args.name is not None:
            raise BulkInputError("--name is for a single prompt; give names in the file's JSON lines")
        return plan_prompts(read_prompt_file(args.prompts), defaults, args.salt)
    line = {"prompt": args.prompt, **({"name": args.name} if args.name else {})}
    return plan_prompts([(0, line)], defaults, args.salt)


def _progress_reporter(progress: Progress | None, total: int) -> Callable[[RunSummary], None]:
    if progress is None:
        return lambda _: None
    task = progress.add_task("generating", total=total, cost="$0")

    def report(summary: RunSummary) -> None:
        done = summary.served + summary.skipped + len(summary.failures)
        progress.update(task, completed=done, cost=f"${summary.cost_usd:.4f}",
                        description=f"generating ({len(summary.failures)} failed)")
    return report


def run_generate(args: argparse.Namespace) -> int:
    errors = Console(stderr=True)
    try:
        _check_numbers(args)
        connection = resolve_connection(args, dict(os.environ))
        prompts = _planned(args)
    except BulkInputError as error:
        errors.print(f"boltgate generate: {error.message}", markup=False, highlight=False)
        return EXIT_USAGE
    progress = None if args.no_progress else Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[cost]}"),
        TimeElapsedColumn(), console=errors)
    policy = RetryPolicy(retries=args.retries, backoff_s=args.backoff)
    try:
        if progress is not None:
            progress.start()
        summary = asyncio.run(run_bulk(prompts, args.out, connection, concurrency=args.concurrency,
                                       policy=policy, on_progress=_progress_reporter(progress, len(prompts))))
    except KeyboardInterrupt:
        errors.print("interrupted: images written so far are whole; run again to resume")
        return EXIT_INTERRUPTED
    except OSError as error:
        errors.print(f"boltgate generate: cannot use {args.out}: {error.strerror or error}", markup=False)
        return EXIT_USAGE
    finally:
        if progress is not None:
            progress.stop()
    for failure in summary.failures[:SHOWN_FAILURES]:
        errors.print(f"failed: {failure}", markup=False, highlight=False)
    if len(summary.failures) > SHOWN_FAILURES:
        errors.print(f"... and {len(summary.failures) - SHOWN_FAILURES} more (see the manifest in {args.out})")
    Console(width=100).print(summary.table())
    if args.summary_json is not None:
        args.summary_json.write_text(json.dumps(summary.as_json(), indent=2) + "\n", encoding="utf-8")
    return summary.exit_code
