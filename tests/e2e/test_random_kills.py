"""The gateway SIGKILLed at random moments under mixed load, restarted on the same store, and the
books checked against what the clients saw (``random_kill_books``).

The other fault tests kill at a chosen point; this one kills wherever the load happens to be:
in a reserve, a settle, a job's charge kept or not yet, an idempotency record half-written. It
runs on the embedded SQLite store and on a real ``redis-server``, in front of a Runflow simulator
slow enough that requests are always in flight, with one key whose budget runs out during the run.
Each round draws one fault (``Faults``): mostly a SIGKILL, sometimes a SIGTERM (a drain); with
Redis also Redis frozen a while (the gateway sometimes killed meanwhile) or shut down and started
again.

The same with ``boltgate serve --workers 2`` (``WorkerFaults``): one worker SIGKILLed, which its
supervisor must replace, or the supervisor's whole process group, or a SIGTERM; each ask on a new
connection, so that both workers spend the tight key's budget at once.

Short by default (``ROUNDS`` kills per store, a fresh seed each run, printed); for a hunt::

    BOLTGATE_CHAOS_ROUNDS=30 BOLTGATE_CHAOS_SEED=1234 pytest -s tests/e2e/test_random_kills.py
    BOLTGATE_CHAOS_WORKER_ROUNDS=20 BOLTGATE_CHAOS_SEED=1234 pytest -s tests/e2e/test_random_kills.py -k workers

A failure names the seed; the kill moments follow from it, though what is in flight at each
moment also depends on timing, so a seed narrows a bug down rather than replaying it exactly.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from backends.simulators import SimulatorServer
from proxy.serving.supervisor import MULTIPROC_DIR_VARIABLE, QUICK_DEATH_S, QUICK_DEATHS
from tests.e2e.conftest import KEY_ENV, SIM_POLL_S, StartSimulator
from tests.e2e.gateway_process import GatewayProcess
from tests.e2e.random_kill_books import Books, charge_log, runs_by_prompt, summary, usage
from tests.e2e.random_kill_load import Gateway, Load
from tests.e2e.worker_processes import live_workers, served_by_worker
from tests.redis_server import RedisServer

ROUNDS = int(os.environ.get("BOLTGATE_CHAOS_ROUNDS", "3"))
SEED = int(os.environ.get("BOLTGATE_CHAOS_SEED") or random.SystemRandom().randrange(1 << 32))
ADMIN = "admin-chaos"
TIGHT, OPEN = "bg-chaos-tight", "bg-chaos-open"
CREDIT_USD = Decimal("0.01")
TIGHT_CREDITS = Decimal(ROUNDS)
"""About two images a round (Runflow: $0.00405 an image): spent before the last round ends."""
DEADLINE_S, GRACE_S = 4.0, 1.0
WORKER_ROUNDS = int(os.environ.get("BOLTGATE_CHAOS_WORKER_ROUNDS") or os.environ.get("BOLTGATE_CHAOS_ROUNDS") or 2)
"""Faults per store with ``--workers 2``: the last always one worker killed."""
WORKER_TIGHT_CREDITS = Decimal(max(2, WORKER_ROUNDS // 2))
"""Four images in two rounds; a long hunt's restarts of two workers leave fewer images a round
than one process's, so half a credit a round keeps the budget running out before the end."""
REPLACE_GUARD_S = 60.0
"""How long a supervisor may take to have two workers again (a spawned worker imports the app)."""
STARTED = "Application startup complete"
"""What uvicorn logs once a worker's app has started: from then on it accepts connections."""
LEASES_GUARD_S = 60.0
"""The longest hold the settings allow is a queued job's (``queued_hold_s``); well past it."""


@dataclass
class Store:
    settings: dict[str, object]
    redis: RedisServer | None = None


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    data = {"data_dir": str(tmp_path / "data")}  # SQLite's file; with Redis, the journal of voids owed
    if request.param == "sqlite":  # as `make run` has it: images where the store's defaults put them
        yield Store({**data, "state_backend": "sqlite"})
        return
    server = RedisServer(appendonly=True)  # a shut-down Redis comes back with everything it acknowledged
    try:
        yield Store({**data, "state_backend": "redis", "redis_url": server.start()}, server)
    finally:
        server.stop()


def settings_for(sim: SimulatorServer, store: dict[str, object],
                 tight_credits: Decimal = TIGHT_CREDITS) -> dict[str, object]:
    return {
        **store, "simulators": "off", "probes": {"enabled": False}, "admin_token": ADMIN,
        "deadline_s": DEADLINE_S, "reservation_grace_s": GRACE_S,
        "jobs": {"reclaim_idle_s": 1.0, "queued_hold_s": 10.0, "stop_grace_s": 1.0},
        "retry": {"backoff_initial_s": 0.05, "backoff_max_s": 0.2, "jitter_s": 0.05},
        "api_keys": {TIGHT: {"name": "tight", "budget_credits": str(tight_credits)}, OPEN: {"name": "open"}},
        "routes": [{"vendor": sim.vendor, "key_env": KEY_ENV, "poll_interval_s": SIM_POLL_S,
                    "regions": [{"name": "r1", "base_url": sim.base_url}]}],
    }


class Faults:
    """One fault a round: drawn, injected, and the gateway running again after it."""

    def __init__(self, process: GatewayProcess, gateway: Gateway, store: Store, rng: random.Random) -> None:
        self.process, self.gateway, self.store, self.rng = process, gateway, store, rng
        self.kinds = ["kill", "kill", "kill", "term", *self.redis_faults()]
        self.injected: list[str] = []

    def redis_faults(self) -> list[str]:
        return ["freeze", "redis_restart"] if self.store.redis else []

    def one(self, kind: str | None = None) -> None:
        """A fault drawn from ``kinds``, or ``kind`` (the moment is drawn all the same)."""
        # now and then within moments of a start, while the new process takes over what the last left
        time.sleep(self.rng.uniform(0, 0.3) if self.rng.random() < 0.25 else self.rng.uniform(0.3, 2.5))
        drawn = self.rng.choice(self.kinds)
        self.injected.append(kind or drawn)
        getattr(self, kind or drawn)()

    def kill(self) -> None:
        self.kill_gateway()
        self.restart()

    def kill_gateway(self) -> None:
        self.process.kill()

    def term(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)
        self.restart()

    def freeze(self) -> None:
        redis = self.store.redis
        assert redis is not None
        redis.freeze()
        killed = self.rng.random() < 0.5
        time.sleep(self.rng.uniform(0.5, 3.0))
        if killed:  # it may owe voids for charges it could not confirm: the next start makes them
            self.kill_gateway()
            self.injected[-1] = "freeze+kill"
        redis.thaw()
        if killed:
            self.restart()

    def redis_restart(self) -> None:
        redis = self.store.redis
        assert redis is not None
        redis.shut_down()
        time.sleep(self.rng.uniform(0, 1.5))
        redis.restart()

    def restart(self) -> None:
        """A new process on the same store, on the same port when it is free again (clients retry
        the address they know)."""
        process = self.process.again()
        self.process = process.start()
        self.gateway.base_url = process.base_url


def wait_for_leases(base_url: str) -> None:
    give_up = time.monotonic() + LEASES_GUARD_S
    while time.monotonic() < give_up:
        if all(usage(base_url, key)["reserved_usd"] == "0.000000" for key in (TIGHT, OPEN)):
            return
        time.sleep(0.2)


def books_once_settled(load: Load, base_url: str, sim: SimulatorServer, tight_credits: Decimal) -> Books:
    """Every ask to its final answer, every lease run out, then the books as the gateway keeps them."""
    load.finish()
    wait_for_leases(base_url)
    return Books(load.asks, charge_log(base_url, ADMIN), runs_by_prompt(sim),
                 {key: usage(base_url, key) for key in (TIGHT, OPEN)},
                 {TIGHT: tight_credits * CREDIT_USD, OPEN: None})


def books_said(faults: Faults, load: Load, books: Books, tight_credits: Decimal) -> str:
    return (f"faults: {', '.join(faults.injected)}; asks: {summary(load.asks)}; charge-log lines: "
            f"{len(books.lines)}; charged with the answer lost: {books.charged_unanswered}; "
            f"tight spent {books.usages[TIGHT]['spent_usd']} of {tight_credits * CREDIT_USD}")


def test_random_kills_lose_double_or_overspend_no_money(
    store: Store, simulator: StartSimulator, tmp_path: Path
) -> None:
    print(f"random kills: seed {SEED}, {ROUNDS} rounds, {store.settings['state_backend']}")
    sim = simulator("runflow", latency_s=0.02, queued_s=0.1, running_s=0.3)
    process = GatewayProcess(settings_for(sim, store.settings), tmp_path / "gateway.log").start()
    load = Load(Gateway(process.base_url), [TIGHT, OPEN], SEED)
    faults = Faults(process, load.gateway, store, random.Random(SEED))
    try:
        load.start({"sync": 2, "keyed": 2, "job": 3})
        for _ in range(ROUNDS):
            faults.one()
        time.sleep(faults.rng.uniform(0.3, 1.0))
        books = books_once_settled(load, faults.process.base_url, sim, TIGHT_CREDITS)
        problems = books.check()
    finally:
        load.stop.set()
        faults.process.stop()
    said = books_said(faults, load, books, TIGHT_CREDITS)
    print(said)
    assert not problems, f"seed {SEED} ({ROUNDS} rounds), {said}:\n" + "\n".join(problems) + \
        f"\n{faults.process.log()}"


class WorkerFaults(Faults):
    """With ``--workers 2``: one worker SIGKILLed (its supervisor must start another in its place),
    or the supervisor's whole process group SIGKILLed (``kill``: a container's end), or a SIGTERM
    that drains both; with Redis, also Redis's faults (a kill while frozen kills the group).

    The supervisor gives up after ``QUICK_DEATHS`` workers in a row die within ``QUICK_DEATH_S`` of
    starting (a worker that cannot start), so a kill that could be the last of such a run kills
    the group instead (``worker>kill``). ``served``: every worker pid that answered an image
    request, read before each restart empties the metrics directory."""

    def __init__(self, process: GatewayProcess, gateway: Gateway, store: Store, rng: random.Random,
                 metrics_dir: Path) -> None:
        super().__init__(process, gateway, store, rng)
        self.kinds = ["worker", "worker", "worker", "kill", "kill", "term", *self.redis_faults()]
        self.metrics_dir = metrics_dir
        self.served: set[int] = set()
        self.replaced = 0
        self._seen_at: dict[int, float] = {}
        self._quick_kills = 0
        self._spawned = 2
        """Workers started so far (each says ``STARTED`` once it serves), counted over restarts."""

    def one(self, kind: str | None = None) -> None:
        self.all_workers()  # a worker killed while it still imports the app would have served nothing
        super().one(kind)

    def worker(self) -> None:
        workers = self.all_workers()
        victim = self.rng.choice(sorted(workers))
        quick = time.monotonic() - self._seen_at[victim] < QUICK_DEATH_S  # seen after it started: never less
        if quick and self._quick_kills + 1 >= QUICK_DEATHS:
            self.injected[-1] = "worker>kill"
            self.kill()
            return
        self._quick_kills = self._quick_kills + 1 if quick else 0
        os.kill(victim, signal.SIGKILL)
        self._spawned += 1
        self.all_workers()
        assert victim not in live_workers(self.process.pid), f"worker {victim} survived SIGKILL"
        self.replaced += 1

    def all_workers(self) -> set[int]:
        """The supervisor's two workers, once both serve (a replacement takes seconds to start)."""
        give_up = time.monotonic() + REPLACE_GUARD_S
        while len(workers := live_workers(self.process.pid)) < 2 or self.started() < self._spawned:
            assert time.monotonic() < give_up, (f"the supervisor runs {len(workers)} workers, not 2, and "
                                                f"{self.started()} of {self._spawned} started")
            time.sleep(0.05)
        for pid in workers:
            self._seen_at.setdefault(pid, time.monotonic())
        return workers

    def kill_gateway(self) -> None:
        self.note_served()
        self.process.kill_group()

    def term(self) -> None:
        self.note_served()
        super().term()

    def restart(self) -> None:
        super().restart()
        self._quick_kills = 0
        self._spawned += 2

    def started(self) -> int:
        return self.process.log_path.read_text(errors="replace").count(STARTED)

    def note_served(self) -> None:
        self.served |= {pid for pid, count in served_by_worker(self.metrics_dir, None).items() if count > 0}


def test_random_kills_of_workers_lose_double_or_overspend_no_money(
    store: Store, simulator: StartSimulator, tmp_path: Path
) -> None:
    """``--workers 2`` on one store: the tight key's budget is spent through both workers at once;
    the last fault is always one worker killed, so the books are read from a supervisor that
    replaced it."""
    print(f"random kills of workers: seed {SEED}, {WORKER_ROUNDS} rounds, {store.settings['state_backend']}")
    sim = simulator("runflow", latency_s=0.02, queued_s=0.1, running_s=0.3)
    metrics_dir = tmp_path / "metrics"
    process = GatewayProcess(settings_for(sim, store.settings, WORKER_TIGHT_CREDITS), tmp_path / "gateway.log",
                             env={MULTIPROC_DIR_VARIABLE: str(metrics_dir)}, args=["--workers", "2"],
                             own_group=True).start()
    load = Load(Gateway(process.base_url), [TIGHT, OPEN], SEED, connection_per_ask=True)
    faults = WorkerFaults(process, load.gateway, store, random.Random(SEED), metrics_dir)
    try:
        load.start({"sync": 2, "keyed": 2, "job": 3})
        for _ in range(WORKER_ROUNDS - 1):
            faults.one()
        faults.one("worker")
        time.sleep(faults.rng.uniform(0.3, 1.0))
        books = books_once_settled(load, faults.process.base_url, sim, WORKER_TIGHT_CREDITS)
        problems = books.check()
        faults.note_served()
    finally:
        load.stop.set()
        faults.process.stop()
    said = f"{books_said(faults, load, books, WORKER_TIGHT_CREDITS)}; workers that answered: {len(faults.served)}"
    print(said)
    assert len(faults.served) >= 2, f"one worker answered everything: {said}"
    assert not problems, f"seed {SEED} ({WORKER_ROUNDS} rounds, --workers 2), {said}:\n" + "\n".join(problems) + \
        f"\n{faults.process.log()}"
