"""The books after the random-kill test, checked against what its clients saw (``random_kill_load``).

Each charge-log line names the vendor's run (``vendor_request_id``); the simulator knows each
run's prompt, and each ask had a prompt of its own, so every line is traced to one ask. A line and
its refund (the same ``request_id``, negated) net out. Then:

- each key's spend is the sum of its lines, within its budget, and nothing is held any more;
- no request id is charged twice (two positive lines), and no line belongs to no ask;
- an ask whose client received images was charged once, what its answer said it cost;
- an ask answered without images was charged nothing; one whose answer was lost, once or not at all;
- a second ask under an ``Idempotency-Key`` answered the same images;
- every image received could be downloaded (what was paid for is there to have);
- no job is left unended.

``problems`` lists every breach found, as sentences, rather than stopping at the first: one kill
often breaks several things at once, and the pattern tells where to look.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx

from backends.simulators import SimulatorServer
from tests.e2e.random_kill_load import Ask

PAGE = 500


def charge_log(base_url: str, admin_token: str) -> list[dict[str, Any]]:
    """Every line of the charge log, read page by page as a client would."""
    lines: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        params: dict[str, str | int] = {"since": "2000-01-01", "limit": PAGE}
        if after is not None:
            params["after"] = after
        answer = httpx.get(f"{base_url}/v1/admin/charges", params=params,
                           headers={"Authorization": f"Bearer {admin_token}"}, timeout=30)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        lines.extend(page["data"])
        if not page["has_more"]:
            return lines
        after = page["next_after"]


def usage(base_url: str, api_key: str) -> dict[str, Any]:
    answer = httpx.get(f"{base_url}/v1/usage", headers={"Authorization": f"Bearer {api_key}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def runs_by_prompt(sim: SimulatorServer) -> dict[str, str]:
    """The vendor's run id -> the prompt it ran."""
    return {job.id: str(job.input.get("prompt")) for job in sim.state.jobs.all()}


@dataclass
class Charged:
    """What one request id of the charge log came to: its lines netted."""

    lines: list[dict[str, Any]] = field(default_factory=list)

    @property
    def images(self) -> int:
        return sum(int(line["images"]) for line in self.lines)

    @property
    def usd(self) -> Decimal:
        return sum((Decimal(line["client_usd"]) for line in self.lines), Decimal(0))

    @property
    def vendor_runs(self) -> set[str]:
        return {str(line["vendor_request_id"]) for line in self.lines if line["vendor_request_id"]}


@dataclass
class Books:
    asks: list[Ask]
    lines: list[dict[str, Any]]
    runs: dict[str, str]
    """The vendor's run id -> its prompt."""
    usages: dict[str, dict[str, Any]]
    """api key -> ``GET /v1/usage``."""
    budgets_usd: dict[str, Decimal | None]
    problems: list[str] = field(default_factory=list)
    charged_unanswered: int = 0
    """Asks whose answer was lost (``unknown``) and that were charged: allowed (the README's
    "it may have been charged"), counted for the report."""

    def check(self) -> list[str]:
        by_request = self._by_request()
        by_prompt: dict[str, list[Charged]] = defaultdict(list)
        for request_id, charged in by_request.items():
            prompts = {self.runs.get(run) for run in charged.vendor_runs}
            if len(prompts) != 1 or None in prompts:
                self.problems.append(f"charge {request_id} traces to no single ask: runs {charged.vendor_runs}")
                continue
            (prompt,) = prompts
            assert prompt is not None
            by_prompt[prompt].append(charged)
        self._check_keys()
        known = set()
        for ask in self.asks:
            known.add(ask.prompt)
            self._check_ask(ask, by_prompt.get(ask.prompt, []))
        for prompt in set(by_prompt) - known:
            self.problems.append(f"charges for a prompt no client asked: {prompt}")
        return self.problems

    def _by_request(self) -> dict[str, Charged]:
        by_request: dict[str, Charged] = defaultdict(Charged)
        for line in self.lines:
            by_request[str(line["request_id"])].lines.append(line)
        for request_id, charged in by_request.items():
            charges = [line for line in charged.lines if int(line["images"]) > 0]
            refunds = [line for line in charged.lines if int(line["images"]) < 0]
            if len(charges) > 1 or len(refunds) > len(charges):
                self.problems.append(f"request {request_id} has {len(charges)} charges and {len(refunds)} refunds")
        return by_request

    def _check_keys(self) -> None:
        logged: dict[str, Decimal] = defaultdict(Decimal)
        for line in self.lines:
            logged[str(line["key_id"])] += Decimal(line["client_usd"])
        for api_key, used in self.usages.items():
            spent = Decimal(used["spent_usd"])
            if spent != logged.get(used["key_id"], Decimal(0)):
                self.problems.append(f"{used['name']}: spent {spent} but its charge log sums to "
                                     f"{logged.get(used['key_id'], Decimal(0))}")
            budget = self.budgets_usd[api_key]
            if budget is not None and spent > budget:
                self.problems.append(f"{used['name']}: spent {spent}, over its budget of {budget}")
            if Decimal(used["reserved_usd"]) != 0:
                self.problems.append(f"{used['name']}: {used['reserved_usd']} still held after every lease ran out")

    def _check_ask(self, ask: Ask, charged: list[Charged]) -> None:
        images = sum(each.images for each in charged)
        usd = sum((each.usd for each in charged), Decimal(0))
        standing = [each for each in charged if each.images > 0]
        said = f"{ask.kind} ask {ask.prompt} (job {ask.job_id}, n={ask.n}, seen: {', '.join(ask.history)})"
        if ask.outcome == "stuck":
            self.problems.append(f"{said} never ended")
        elif ask.outcome == "received":
            if len(standing) != 1 or images != ask.n or len(ask.images) != ask.n:
                self.problems.append(f"{said} received {len(ask.images)} images but was charged {len(standing)} "
                                     f"times for {images} images")
            elif usd != ask.billed_usd:
                self.problems.append(f"{said} was told it cost {ask.billed_usd} but was charged {usd}")
        elif ask.outcome == "refused":
            if images != 0 or usd != 0:
                self.problems.append(f"{said} got no images but was charged {usd} for {images} images")
        elif len(standing) > 1 or images not in (0, ask.n):
            self.problems.append(f"{said} (answer lost) was charged {len(standing)} times for {images} images")
        elif images:
            self.charged_unanswered += 1
        if ask.outcome == "received" and any(status != "200" for status in ask.fetched):
            self.problems.append(f"{said}: paid for images it could not download: {ask.fetched}")
        if any("idempotency_key_reused" in seen for seen in ask.history):
            self.problems.append(f"{said}: the same body sent again under its key was taken for another request")
        if ask.replayed_images is not None and ask.replayed_images != ask.images:
            self.problems.append(f"{said}: its replay answered {ask.replayed_images}, not {ask.images}")


def summary(asks: list[Ask]) -> str:
    counts: dict[str, int] = defaultdict(int)
    for ask in asks:
        counts[f"{ask.kind}:{ask.outcome}"] += 1
    return ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))
