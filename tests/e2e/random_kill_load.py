"""The clients of the random-kill test: mixed load on a gateway that dies under it, and what each
client saw, kept to check the books against afterwards (``random_kill_books``).

Three kinds of client, each a thread that asks one thing at a time until told to stop:

- ``sync``: ``POST /v1/images/generations`` without an ``Idempotency-Key``. A connection cut by
  the kill is not retried (a retry would be another request): what it was charged is unknown.
- ``keyed``: the same with an ``Idempotency-Key``, sent again with that key and body after a cut,
  and after a 409 "still in progress", until a final answer; a 200 is sometimes asked again on
  purpose, to check the replay gives the same images.
- ``job``: ``POST /v1/images/jobs`` (mostly with an ``Idempotency-Key``, resubmitted after a cut),
  sometimes cancelled, then polled until it ends, across restarts.

Every request has a prompt of its own (``Ask.prompt``): the vendor simulator records the prompt of
every run it made, and the charge log names the vendor's run, so each charge can be traced to the
ask that caused it, whatever request id, job hold or run again the gateway used on the way.

The gateway's address is read afresh at every try (``Gateway.base_url``), so a client follows a
restart onto whatever port it came back on.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import httpx

AskKind = Literal["sync", "keyed", "job"]
Outcome = Literal["received", "refused", "unknown", "stuck"]
"""``received``: the client holds its images (a 200, a succeeded job): charged exactly once.
``refused``: a final answer without images (4xx, 5xx, a failed or cancelled job): charged nothing.
``unknown``: the answer never came (a cut with no key to ask again, a 409 saying the answer was
lost, a job submit whose 202 was lost): charged once or not at all, never twice.
``stuck``: a job that never ended: always a failure."""

TRY_TIMEOUT_S = 30.0
"""One HTTP try; far above the deadline, so a try only ends early when the gateway dies."""
RETRY_PAUSE_S = 0.1
RESOLVE_GUARD_S = 90.0
"""How long an ask may keep retrying once the load is told to stop: a job still running gets
this long to end, a keyed request cut by a kill this long to be answered again."""
IN_PROGRESS_PATIENCE_S = 5.0
"""Once the load is told to stop, how long a keyed ask waits out 409 "still in progress": a key
whose first request died with its process reads so for the request's deadline plus a minute
(``proxy.claims``), and the test does not wait that out; the ask is then left ``unknown``."""
IN_PROGRESS = "idempotency_conflict"
"""The code of a 409 for a key whose first request may still run (``proxy.claims``)."""


class Gateway:
    """The address of the gateway process alive now; swapped by the test at each restart."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url


@dataclass
class Ask:
    """One thing a client asked, and what it saw of it in the end."""

    kind: AskKind
    api_key: str
    n: int
    prompt: str = field(default_factory=lambda: f"chaos {uuid.uuid4().hex}")
    outcome: Outcome = "unknown"
    images: list[str] = field(default_factory=list)
    """The names of the images received (the last part of each URL)."""
    billed_usd: Decimal | None = None
    """``billing.cost_usd`` of the answer that brought the images."""
    fetched: list[str] = field(default_factory=list)
    """What downloading each received image gave (``200``, ``404``...), as a client does at once."""
    replayed_images: list[str] | None = None
    """What a deliberate second ask under the same ``Idempotency-Key`` answered."""
    job_id: str | None = None
    tries: int = 0
    history: list[str] = field(default_factory=list)
    """Every answer seen, in order (``200``, ``409 idempotent_request_in_progress``, ``cut``...)."""

    def saw(self, what: str) -> None:
        self.history.append(what)


def image_names(body: dict[str, Any]) -> list[str]:
    return [str(item["url"]).rsplit("/", 1)[-1] for item in body.get("data") or []]


def error_code(answer: httpx.Response) -> str:
    try:
        return str(answer.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return "?"


class Load:
    """The client threads and every ask they made."""

    def __init__(self, gateway: Gateway, keys: list[str], seed: int, *, connection_per_ask: bool = False) -> None:
        self.gateway = gateway
        self.keys = keys
        self.connection_per_ask = connection_per_ask
        """Each ask on connections of its own (retries and polls keep theirs): with ``--workers``,
        a connection is served by the worker that accepted it, so a client that kept one for the
        whole run would stay with one worker (all of them with the first up after a restart)."""
        self.asks: list[Ask] = []
        self.errors: list[str] = []
        """What failed in a client thread (the client's own bug, or an answer it could not read)."""
        self.stop = threading.Event()
        self._seed = seed
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self, clients: dict[AskKind, int]) -> None:
        number = 0
        for kind, count in clients.items():
            for _ in range(count):
                number += 1
                rng = random.Random(self._seed * 1000 + number)
                thread = threading.Thread(target=self._client, args=(kind, rng), name=f"{kind}-{number}",
                                          daemon=True)
                self._threads.append(thread)
                thread.start()

    def finish(self) -> None:
        """Stop asking anything new and wait for every ask under way to reach its final answer."""
        self.stop.set()
        for thread in self._threads:
            thread.join(RESOLVE_GUARD_S + TRY_TIMEOUT_S + 10)
            assert not thread.is_alive(), f"client {thread.name} never finished"
        assert not self.errors, "\n".join(self.errors)

    def _client(self, kind: AskKind, rng: random.Random) -> None:
        try:
            self._ask_until_stopped(kind, rng)
        except BaseException as error:  # a thread's exception would go unseen: the test fails on it
            self.errors.append(f"{threading.current_thread().name}: {type(error).__name__}: {error}")
            raise

    def _ask_until_stopped(self, kind: AskKind, rng: random.Random) -> None:
        http = httpx.Client(timeout=TRY_TIMEOUT_S)
        try:
            while not self.stop.is_set():
                ask = Ask(kind, rng.choice(self.keys), n=rng.choice((1, 1, 2)))
                with self._lock:
                    self.asks.append(ask)
                if kind == "job":
                    JobClient(self, http, rng, ask).run()
                else:
                    SyncClient(self, http, rng, ask).run()
                if ask.outcome == "unknown":
                    time.sleep(RETRY_PAUSE_S)  # the gateway is down: do not spin on refused connections
                if self.connection_per_ask:
                    http.close()
                    http = httpx.Client(timeout=TRY_TIMEOUT_S)
        finally:
            http.close()

    def url(self, path: str) -> str:
        return f"{self.gateway.base_url}{path}"


class Client:
    def __init__(self, load: Load, http: httpx.Client, rng: random.Random, ask: Ask) -> None:
        self.load, self.http, self.rng, self.ask = load, http, rng, ask
        self.stopped_at: float | None = None

    def headers(self, idempotency_key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.ask.api_key}"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    def body(self) -> dict[str, object]:
        return {"model": "sdxl-lightning", "prompt": self.ask.prompt, "size": "256x256", "n": self.ask.n}

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        """One try; None when the connection failed or was cut (the gateway is dead or starting)."""
        self.ask.tries += 1
        try:
            return self.http.request(method, self.load.url(path), **kwargs)
        except httpx.TransportError as cut:
            self.ask.saw(f"cut {type(cut).__name__}")
            return None

    def may_go_on(self, patience_s: float = RESOLVE_GUARD_S) -> bool:
        """Whether to try again: always while the load runs; after it is told to stop, for
        ``patience_s`` (an ask still unresolved then is reported, not waited on for ever)."""
        if not self.load.stop.is_set():
            return True
        if self.stopped_at is None:
            self.stopped_at = time.monotonic()
        return time.monotonic() < self.stopped_at + patience_s

    def pause(self) -> None:
        time.sleep(RETRY_PAUSE_S)

    def fetch_images(self) -> None:
        """Download each image received, as a client does next: the images must be there to
        have, not only their URLs (a restart must not take away what was paid for)."""
        for name in self.ask.images:
            while True:
                answer = self.send("GET", f"/v1/images/files/{name}")
                if answer is not None and answer.status_code < 500:
                    self.ask.fetched.append(str(answer.status_code))
                    break
                if not self.may_go_on():
                    self.ask.fetched.append("never answered")
                    break
                self.pause()


class SyncClient(Client):
    left_in_progress = False

    def run(self) -> None:
        key = uuid.uuid4().hex if self.ask.kind == "keyed" else None
        answer = self.generate(key)
        if answer is None:  # cut, charged or not: unknown; keyed: left in progress (unknown), else stuck
            self.ask.outcome = "unknown" if key is None or self.left_in_progress else "stuck"
            return
        if answer.status_code != 200:
            self.ask.outcome = "unknown" if error_code(answer) == "idempotent_answer_unavailable" else "refused"
            return
        body = answer.json()
        self.ask.outcome = "received"
        self.ask.images = image_names(body)
        self.ask.billed_usd = Decimal(body["billing"]["cost_usd"])
        self.fetch_images()
        if key is not None and self.rng.random() < 0.3:
            replay = self.generate(key)
            if replay is not None:  # anything but the same images is a problem the books report
                self.ask.replayed_images = image_names(replay.json()) if replay.status_code == 200 \
                    else [f"{replay.status_code} {error_code(replay)}"]

    def generate(self, key: str | None) -> httpx.Response | None:
        """The answer, after retrying what a client should retry under ``key``; None if cut for good."""
        while True:
            answer = self.send("POST", "/v1/images/generations", json=self.body(), headers=self.headers(key))
            if answer is not None:
                self.ask.saw(f"{answer.status_code} {error_code(answer) if answer.status_code != 200 else ''}")
            if key is None:
                return answer
            in_progress = answer is not None and answer.status_code == 409 and error_code(answer) == IN_PROGRESS
            if answer is not None and not in_progress:
                return answer
            if not self.may_go_on(patience_s=IN_PROGRESS_PATIENCE_S if in_progress else RESOLVE_GUARD_S):
                self.left_in_progress = in_progress
                return None
            self.pause()


class JobClient(Client):
    def run(self) -> None:
        key = uuid.uuid4().hex if self.rng.random() < 0.8 else None
        job = self.submit(key)
        if job is None:
            return  # the 202 was lost: a job may run and be charged that nobody knows of (unknown)
        self.ask.job_id = str(job["id"])
        if self.rng.random() < 0.15:
            time.sleep(self.rng.uniform(0, 0.5))
            self.send("DELETE", f"/v1/images/jobs/{self.ask.job_id}", headers=self.headers())
        self.follow()

    def submit(self, key: str | None) -> dict[str, Any] | None:
        body = {**self.body(), "response_format": "url"}
        while True:
            answer = self.send("POST", "/v1/images/jobs", json=body, headers=self.headers(key))
            if answer is not None:
                self.ask.saw(f"submit {answer.status_code} {error_code(answer) if answer.status_code >= 400 else ''}")
                if answer.status_code == 202 or (answer.status_code == 200 and key is not None):
                    submitted: dict[str, Any] = answer.json()
                    return submitted
                if not (answer.status_code == 409 and error_code(answer) == IN_PROGRESS):
                    self.ask.outcome = "unknown" if error_code(answer) == "idempotent_answer_unavailable" \
                        else "refused"
                    return None
            elif key is None:
                return None
            if not self.may_go_on(patience_s=IN_PROGRESS_PATIENCE_S if answer is not None else RESOLVE_GUARD_S):
                self.ask.outcome = "unknown" if answer is not None else "stuck"
                return None
            self.pause()

    def follow(self) -> None:
        """Poll the job until it ends; ``stuck`` if it has not by the time the client gives up."""
        while True:
            answer = self.send("GET", f"/v1/images/jobs/{self.ask.job_id}", headers=self.headers())
            if answer is not None:
                if answer.status_code == 200:
                    job = answer.json()
                    if job["status"] == "succeeded":
                        self.ask.saw("succeeded")
                        self.ask.outcome = "received"
                        self.ask.images = image_names(job)
                        self.ask.billed_usd = Decimal(job["billing"]["cost_usd"])
                        self.fetch_images()
                        return
                    if job["status"] in ("failed", "cancelled"):
                        self.ask.saw(f"{job['status']} {(job.get('error') or {}).get('code', '')}")
                        self.ask.outcome = "refused"
                        return
                else:
                    self.ask.saw(f"poll {answer.status_code} {error_code(answer)}")
            if not self.may_go_on():
                self.ask.outcome = "stuck"
                return
            time.sleep(0.05)
