"""A bulk run: skip what is written, send the rest with bounded concurrency, write, record, sum up.

Workers (``concurrency`` of them) take prompts from one queue, so a thousand prompts never make
a thousand tasks or connections. A prompt whose files all exist is skipped without a request
(resuming a run costs nothing); the rest are sent with their fixed ``Idempotency-Key``. A 401
stops the run early: every other prompt would be refused the same way.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from proxy.bulk.client import BulkClient, Failed, Outcome, Served
from proxy.bulk.output import Manifest, write_atomically
from proxy.bulk.prompts import BulkPrompt
from proxy.bulk.retry import RetryPolicy
from proxy.bulk.summary import RunSummary


@dataclass(frozen=True, slots=True)
class GatewayConnection:
    base_url: str
    api_key: str | None
    timeout_s: float = 180.0
    """Per try; longer than the gateway's deadline, so the gateway answers before we give up."""
    max_answer_bytes: int | None = None
    """The most of one answer read; None: what each prompt's images could take (``answer.py``)."""

    def http_client(self, concurrency: int) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return httpx.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=httpx.Timeout(self.timeout_s, connect=10.0),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency))


def is_done(prompt: BulkPrompt, outdir: Path) -> bool:
    return all((outdir / name).is_file() for name in prompt.file_names)


def _record(prompt: BulkPrompt, outcome: Outcome) -> dict[str, Any]:
    record: dict[str, Any] = {
        "line": prompt.line, "prompt": prompt.options.prompt, "name": prompt.name,
        "idempotency_key": prompt.idempotency_key, "attempts": outcome.attempts,
        "cost_usd": str(outcome.cost_usd),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if isinstance(outcome, Served):
        record.update(status="done", files=prompt.file_names, vendor=outcome.vendor, region=outcome.region,
                      latency_s=round(outcome.latency_s, 3), replayed=outcome.replayed, seed=outcome.seed)
    else:
        record.update(status="failed", error=outcome.message, http_status=outcome.status)
    return record


def _write(prompt: BulkPrompt, outcome: Served, outdir: Path) -> Outcome:
    """Write the images; a short or unwritable answer is a failure (charged if it was)."""
    if len(outcome.images) != prompt.options.n:
        return Failed(message=f"asked for {prompt.options.n} images, the gateway answered {len(outcome.images)}",
                      attempts=outcome.attempts, status=200, cost_usd=outcome.cost_usd)
    try:
        for name, data in zip(prompt.file_names, outcome.images, strict=True):
            write_atomically(outdir, name, data)
    except OSError as error:
        return Failed(message=f"cannot write {outdir}: {error.strerror or error}", attempts=outcome.attempts,
                      status=200, cost_usd=outcome.cost_usd)
    return outcome


def _count(summary: RunSummary, prompt: BulkPrompt, outcome: Outcome) -> None:
    summary.cost_usd += outcome.cost_usd
    if isinstance(outcome, Served):
        summary.served += 1
        summary.replayed += outcome.replayed
        summary.images += len(outcome.images)
        summary.vendors[outcome.vendor] += 1
        if not outcome.replayed:  # a replay's few milliseconds say nothing of generation time
            summary.latencies_s.append(outcome.latency_s)
    else:
        summary.failures.append(f"{prompt.where}: {outcome.message}")


async def run_bulk(prompts: list[BulkPrompt], outdir: Path, connection: GatewayConnection, *,
                   concurrency: int, policy: RetryPolicy,
                   on_progress: Callable[[RunSummary], None] = lambda _: None) -> RunSummary:
    outdir.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(outdir)
    summary = RunSummary(prompts=len(prompts))
    queue: deque[BulkPrompt] = deque()
    for prompt in prompts:
        if is_done(prompt, outdir):
            summary.skipped += 1
        else:
            queue.append(prompt)
    on_progress(summary)
    refused: list[str] = []

    async def work(client: BulkClient) -> None:
        while queue:
            prompt = queue.popleft()
            outcome: Outcome
            if refused:
                outcome = Failed(message=f"not sent: {refused[0]}", attempts=0)
            else:
                outcome = await client.generate(prompt)
                if isinstance(outcome, Served):
                    outcome = _write(prompt, outcome, outdir)
                elif outcome.fatal:
                    refused.append(outcome.message)
                manifest.append(_record(prompt, outcome))
            _count(summary, prompt, outcome)
            on_progress(summary)

    async with connection.http_client(concurrency) as http:
        client = BulkClient(http, policy, max_answer_bytes=connection.max_answer_bytes)
        await asyncio.gather(*(work(client) for _ in range(min(concurrency, len(queue)))))
    return summary
