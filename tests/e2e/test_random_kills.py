"""The gateway SIGKILLed at random moments under mixed load, restarted on the same store, and the
books checked against what the clients saw (``random_kill_books``).

The other fault tests kill at a chosen point; this one kills wherever the load happens to be:
in a reserve, a settle, a job's charge kept or not yet, an idempotency record half-written. It
runs on the embedded SQLite store and on a real ``redis-server``, in front of a Runflow simulator
slow enough that requests are always in flight, with one key whose budget runs out during the run.
Each round draws one fault (``Faults``): mostly a SIGKILL, sometimes a SIGTERM (a drain); with
Redis also Redis frozen a while (the gateway sometimes killed meanwhile) or shut down and started
again.

Short by default (``ROUNDS`` kills per store, a fresh seed each run, printed); for a hunt::

    BOLTGATE_CHAOS_ROUNDS=30 BOLTGATE_CHAOS_SEED=1234 pytest -s tests/e2e/test_random_kills.py

A failure names the seed; the kill moments follow from it, though what is in flight at each
moment also depends on timing, so a seed narrows a bug down rather than replaying it exactly.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from backends.simulators import SimulatorServer
from tests.e2e.conftest import KEY_ENV, SIM_POLL_S, StartSimulator
from tests.e2e.gateway_process import GatewayProcess
from tests.e2e.random_kill_books import Books, charge_log, runs_by_prompt, summary, usage
from tests.e2e.random_kill_load import Gateway, Load
from tests.redis_server import RedisServer

ROUNDS = int(os.environ.get("BOLTGATE_CHAOS_ROUNDS", "3"))
SEED = int(os.environ.get("BOLTGATE_CHAOS_SEED") or random.SystemRandom().randrange(1 << 32))
ADMIN = "admin-chaos"
TIGHT, OPEN = "bg-chaos-tight", "bg-chaos-open"
CREDIT_USD = Decimal("0.01")
TIGHT_CREDITS = Decimal(ROUNDS)
"""About two images a round (Runflow: $0.00405 an image): spent before the last round ends."""
DEADLINE_S, GRACE_S = 4.0, 1.0
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


def settings_for(sim: SimulatorServer, store: dict[str, object]) -> dict[str, object]:
    return {
        **store, "simulators": "off", "probes": {"enabled": False}, "admin_token": ADMIN,
        "deadline_s": DEADLINE_S, "reservation_grace_s": GRACE_S,
        "jobs": {"reclaim_idle_s": 1.0, "queued_hold_s": 10.0, "stop_grace_s": 1.0},
        "retry": {"backoff_initial_s": 0.05, "backoff_max_s": 0.2, "jitter_s": 0.05},
        "api_keys": {TIGHT: {"name": "tight", "budget_credits": str(TIGHT_CREDITS)}, OPEN: {"name": "open"}},
        "routes": [{"vendor": sim.vendor, "key_env": KEY_ENV, "poll_interval_s": SIM_POLL_S,
                    "regions": [{"name": "r1", "base_url": sim.base_url}]}],
    }


class Faults:
    """One fault a round: drawn, injected, and the gateway running again after it."""

    def __init__(self, process: GatewayProcess, gateway: Gateway, store: Store, log: Path,
                 rng: random.Random) -> None:
        self.process, self.gateway, self.store, self.log, self.rng = process, gateway, store, log, rng
        self.kinds = ["kill", "kill", "kill", "term"] + (["freeze", "redis_restart"] if store.redis else [])
        self.injected: list[str] = []

    def one(self) -> None:
        # now and then within moments of a start, while the new process takes over what the last left
        time.sleep(self.rng.uniform(0, 0.3) if self.rng.random() < 0.25 else self.rng.uniform(0.3, 2.5))
        kind = self.rng.choice(self.kinds)
        self.injected.append(kind)
        getattr(self, kind)()

    def kill(self) -> None:
        self.process.kill()
        self.restart()

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
            self.process.kill()
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
        process = GatewayProcess(self.process.settings, self.log)
        process.port = self.process.port
        self.process = process.start()
        self.gateway.base_url = process.base_url


def wait_for_leases(base_url: str) -> None:
    give_up = time.monotonic() + LEASES_GUARD_S
    while time.monotonic() < give_up:
        if all(usage(base_url, key)["reserved_usd"] == "0.000000" for key in (TIGHT, OPEN)):
            return
        time.sleep(0.2)


def test_random_kills_lose_double_or_overspend_no_money(
    store: Store, simulator: StartSimulator, tmp_path: Path
) -> None:
    print(f"random kills: seed {SEED}, {ROUNDS} rounds, {store.settings['state_backend']}")
    sim = simulator("runflow", latency_s=0.02, queued_s=0.1, running_s=0.3)
    log = tmp_path / "gateway.log"
    process = GatewayProcess(settings_for(sim, store.settings), log).start()
    load = Load(Gateway(process.base_url), [TIGHT, OPEN], SEED)
    faults = Faults(process, load.gateway, store, log, random.Random(SEED))
    try:
        load.start({"sync": 2, "keyed": 2, "job": 3})
        for _ in range(ROUNDS):
            faults.one()
        time.sleep(faults.rng.uniform(0.3, 1.0))
        load.finish()
        base_url = faults.process.base_url
        wait_for_leases(base_url)
        books = Books(load.asks, charge_log(base_url, ADMIN), runs_by_prompt(sim),
                      {key: usage(base_url, key) for key in (TIGHT, OPEN)},
                      {TIGHT: TIGHT_CREDITS * CREDIT_USD, OPEN: None})
        problems = books.check()
    finally:
        load.stop.set()
        faults.process.stop()
    said = (f"faults: {', '.join(faults.injected)}; asks: {summary(load.asks)}; charge-log lines: "
            f"{len(books.lines)}; charged with the answer lost: {books.charged_unanswered}; "
            f"tight spent {books.usages[TIGHT]['spent_usd']} of {TIGHT_CREDITS * CREDIT_USD}")
    print(said)
    assert not problems, f"seed {SEED} ({ROUNDS} rounds), {said}:\n" + "\n".join(problems) + \
        f"\n{faults.process.log()}"
