"""A void owed survives the gateway process: real processes, real Redis, a real network cut.

The gateway talks to ``redis-server`` through a relay (``LossyProxy``) that is cut at the settle's
script call: after Redis ran it, so the charge lands and its answer is lost (the client gets 503
and must not stay charged), or before Redis got it (nothing lands: the control). While Redis is
unreachable the process that owes the void is stopped, by SIGKILL or by SIGTERM, so it cannot
make it; the next process started on the same data directory, with Redis back, makes it from the
journal the first one left (``proxy.owed_voids``): the key's spend is what it was before the
request, the charge log holds the charge and its refund line, and the journal is gone.
"""

from __future__ import annotations

import hashlib
import signal
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import redis

from core.state.redis_ledger import _SETTLE
from proxy.owed_voids import OWED_VOIDS_DIRECTORY
from tests.e2e.conftest import StartSimulator
from tests.e2e.gateway_process import GatewayProcess
from tests.e2e.lossy_proxy import LossyProxy
from tests.e2e.test_process_faults import BODY, HANG_GUARD_S, route_settings, usage, wait_for
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis

ADMIN = "admin-token-voids"
KEY = "bg-voids"
SETTLE_SHA = hashlib.sha1(_SETTLE.encode()).hexdigest().encode()
"""What ``EVALSHA`` sends for a settle: where the relay is cut."""
CHARGE_LOG = "boltgate:ledger:charges"
"""The charge log's stream in Redis (``RedisLedgerStore``, default prefix)."""


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def relay(redis_server: RedisServer) -> Iterator[LossyProxy]:
    proxy = LossyProxy(int(redis_server.url.rsplit(":", 1)[1].split("/")[0])).start()
    yield proxy
    proxy.stop()


def gateway_settings(simulator: StartSimulator, relay: LossyProxy, data_dir: Path) -> dict[str, object]:
    sim = simulator("aigateway", latency_s=0.05)
    return {"state_backend": "redis", "redis_url": f"redis://127.0.0.1:{relay.port}/0", "state_timeout_s": 0.5,
            "deadline_s": 2.0, "reservation_grace_s": 1.0, "data_dir": str(data_dir), "admin_token": ADMIN,
            "api_keys": {KEY: {"name": "team", "budget_credits": "10"}}, "routes": [route_settings(sim)],
            "simulators": "off", "probes": {"enabled": False}}


def generate(gateway: GatewayProcess) -> httpx.Response:
    return httpx.post(f"{gateway.base_url}/v1/images/generations", json=BODY, timeout=HANG_GUARD_S,
                      headers={"Authorization": f"Bearer {KEY}"})


def charges(gateway: GatewayProcess) -> list[dict[str, object]]:
    answer = httpx.get(f"{gateway.base_url}/v1/admin/charges", headers={"Authorization": f"Bearer {ADMIN}"},
                       timeout=10)
    assert answer.status_code == 200, answer.text
    listed: list[dict[str, object]] = answer.json()["data"]
    return listed


def answered_503_with_redis_cut(gateway: GatewayProcess, relay: LossyProxy, redis_server: RedisServer,
                                *, settle_lands: bool) -> None:
    """A request whose settle Redis ran with its answer lost (``settle_lands``), or never got,
    answered 503 in OpenAI's envelope; Redis unreachable for the gateway from then on."""
    store = redis.Redis.from_url(redis_server.url)
    logged_before = store.xlen(CHARGE_LOG)
    relay.cut_at(SETTLE_SHA, forwarded=settle_lands)
    answer = generate(gateway)
    assert relay.is_cut, "the settle never reached the relay"
    assert answer.status_code == 503, f"{answer.text}\n{gateway.log()}"
    assert answer.headers["retry-after"]
    assert answer.json()["error"]["code"] == "state_unavailable", answer.text
    assert store.xlen(CHARGE_LOG) == logged_before + settle_lands  # what Redis holds, whatever the gateway knows
    store.close()


def owed_void_files(data_dir: Path) -> list[Path]:
    directory = data_dir / OWED_VOIDS_DIRECTORY
    return sorted(directory.iterdir()) if directory.exists() else []


def check_voided(gateway: GatewayProcess, served: httpx.Response, before: dict[str, object],
                 *, settle_landed: bool) -> None:
    """The key is charged for the image served and nothing else: the 503's charge, if it landed,
    is taken back with a refund line; its hold is closed."""
    wait_for(lambda: usage(gateway.base_url, KEY)["spent_usd"] == before["spent_usd"],
             "the owed void to be made")
    wait_for(lambda: usage(gateway.base_url, KEY)["reserved_usd"] == "0.000000", "the 503's hold to be closed")
    after = usage(gateway.base_url, KEY)
    assert after["spent_usd"] == str(Decimal(served.headers["x-boltgate-cost-usd"]).quantize(Decimal("0.000001")))
    lines = charges(gateway)
    assert [line["images"] for line in lines] == ([1, 1, -1] if settle_landed else [1])
    if settle_landed:
        _, charge, refund = lines
        assert refund["request_id"] == charge["request_id"] != lines[0]["request_id"]
        assert Decimal(str(refund["client_usd"])) == -Decimal(str(charge["client_usd"])) < 0


def served_then_answered_503(gateway: GatewayProcess, relay: LossyProxy, redis_server: RedisServer,
                             *, settle_lands: bool) -> tuple[httpx.Response, dict[str, object]]:
    """One image served, then a request answered 503 with Redis cut at its settle (Redis still
    unreachable after): the image's answer, and the key's usage before the 503."""
    served = generate(gateway)
    assert served.status_code == 200, served.text
    before = usage(gateway.base_url, KEY)
    answered_503_with_redis_cut(gateway, relay, redis_server, settle_lands=settle_lands)
    return served, before


def made_by_the_next_start(settings: dict[str, object], relay: LossyProxy, tmp_path: Path, served: httpx.Response,
                           before: dict[str, object], *, settle_landed: bool) -> None:
    """Redis reachable again, a process started on the same data directory makes the void the
    stopped one left written down (its one file taken over, then removed), and owes nothing at
    its own stop."""
    data_dir = tmp_path / "data"
    left = owed_void_files(data_dir)
    relay.mend()
    with GatewayProcess(settings, tmp_path / "next.log") as following:
        check_voided(following, served, before, settle_landed=settle_landed)
        assert len(left) == 1 and not left[0].exists(), following.log()  # taken over, then removed
    assert owed_void_files(data_dir) == []  # nothing owed at its stop: nothing kept


@pytest.mark.parametrize("settle_lands", [True, False], ids=["settle-landed-answer-lost", "settle-never-sent"])
def test_a_void_owed_by_a_killed_gateway_is_made_by_the_next_start(
    redis_server: RedisServer, relay: LossyProxy, simulator: StartSimulator, tmp_path: Path, settle_lands: bool
) -> None:
    settings = gateway_settings(simulator, relay, tmp_path / "data")
    with GatewayProcess(settings, tmp_path / "killed.log") as killed:
        served, before = served_then_answered_503(killed, relay, redis_server, settle_lands=settle_lands)
        killed.kill()  # with Redis unreachable: the void is owed, and only the journal knows it

    made_by_the_next_start(settings, relay, tmp_path, served, before, settle_landed=settle_lands)


def test_a_void_owed_at_a_sigterm_with_redis_unreachable_is_left_for_the_next_start(
    redis_server: RedisServer, relay: LossyProxy, simulator: StartSimulator, tmp_path: Path
) -> None:
    settings = gateway_settings(simulator, relay, tmp_path / "data")
    with GatewayProcess(settings, tmp_path / "stopped.log") as stopped:
        served, before = served_then_answered_503(stopped, relay, redis_server, settle_lands=True)
        stopped.terminate()  # its last try at the void fails: Redis is still unreachable
        assert stopped.wait(timeout=HANG_GUARD_S) in (0, -signal.SIGTERM), stopped.log()

    made_by_the_next_start(settings, relay, tmp_path, served, before, settle_landed=True)
    said = stopped.log()
    assert "stopping with a void still owed" in said and "the next start on this data directory makes it" in said
