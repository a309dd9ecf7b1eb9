"""Two gateway replicas on one real ``redis-server`` (AOF on, as the chart runs it) while Redis is
killed (SIGKILL) and restarted, or frozen (SIGSTOP) and resumed, under load.

What must hold whatever the timing: no 500; every 503 carries ``Retry-After`` and OpenAI's
envelope; every delivered image is charged exactly once and nothing else is (the key's spend
grows by exactly the sum of the ``x-boltgate-cost-usd`` of the 200s, once the voids of settles
the frozen server never confirmed are made); keys and revocations survive; reserved credits
come back to zero within the deadline plus the grace.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal

import httpx
import pytest

from proxy.unconfirmed_charges import LONGEST_PAUSE_S
from tests.e2e.conftest import StartGateway, StartSimulator, route_to
from tests.e2e.gateway_server import GatewayServer
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis

ADMIN = "admin-token-outage"
BODY = {"model": "sdxl-lightning", "prompt": "a red kite", "size": "256x256", "response_format": "b64_json"}
DEADLINE_S = 4.0
GRACE_S = 1.0
SETTINGS: dict[str, object] = {"state_backend": "redis", "state_timeout_s": 0.5, "deadline_s": DEADLINE_S,
                               "reservation_grace_s": GRACE_S, "admin_token": ADMIN}


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(appendonly=True)
    server.start()
    yield server
    server.stop()


def admin(method: str, url: str, **kwargs: object) -> httpx.Response:
    return httpx.request(method, url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10, **kwargs)  # type: ignore[arg-type]


def usage(replica: GatewayServer, key: str) -> dict[str, object]:
    answer = httpx.get(f"{replica.base_url}/v1/usage", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


async def load(replicas: list[GatewayServer], key: str, fault: Callable[[], Awaitable[None]],
               workers: int = 6) -> list[httpx.Response]:
    """Requests from ``workers`` clients, alternating replicas, before, during and after ``fault``."""
    answers: list[httpx.Response] = []
    done = asyncio.Event()

    async def client(index: int) -> None:
        async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {key}"}) as http:
            turn = index
            while not done.is_set():
                replica = replicas[turn % len(replicas)]
                turn += 1
                answers.append(await http.post(f"{replica.base_url}/v1/images/generations", json=BODY))

    clients = [asyncio.create_task(client(index)) for index in range(workers)]
    await asyncio.sleep(0.5)
    await fault()
    await asyncio.sleep(1.0)
    done.set()
    await asyncio.gather(*clients)
    return answers


def check_answers(answers: list[httpx.Response]) -> Decimal:
    """No 500, every 503 explained and retryable; the sum charged for the images delivered."""
    statuses = {answer.status_code for answer in answers}
    assert statuses <= {200, 503}, [(a.status_code, a.text[:200]) for a in answers if a.status_code not in (200, 503)]
    for answer in answers:
        if answer.status_code == 503:
            assert answer.headers.get("retry-after"), answer.text
            assert answer.json()["error"]["code"] in {"state_unavailable", "reservation_expired"}, answer.text
    delivered = [answer for answer in answers if answer.status_code == 200]
    assert delivered, "no request was served at all"
    for answer in delivered:
        assert len(answer.json()["data"]) == 1
    return sum((Decimal(answer.headers["x-boltgate-cost-usd"]) for answer in delivered), Decimal(0))


def wait_until_spent(replica: GatewayServer, key: str, expected: Decimal) -> dict[str, object]:
    """A request answered 503 whose settle landed unconfirmed is voided once Redis answers (the
    replica's next background try, within ``LONGEST_PAUSE_S``): the spend reaches the sum charged."""
    import time

    give_up = time.monotonic() + LONGEST_PAUSE_S + 10
    while Decimal(str((after := usage(replica, key))["spent_usd"])) != expected:
        assert time.monotonic() < give_up, f"spent {after['spent_usd']}, charged {expected}"
        time.sleep(0.2)
    return after


def wait_until_nothing_is_reserved(replica: GatewayServer, key: str) -> None:
    """Holds of requests that got 503 run out with their lease: deadline + grace (+ a hang guard)."""
    import time

    give_up = time.monotonic() + DEADLINE_S + GRACE_S + 10
    while usage(replica, key)["reserved_usd"] != "0.000000":
        assert time.monotonic() < give_up, f"credits still reserved: {usage(replica, key)}"
        time.sleep(0.2)


def two_replicas(redis_url: str, simulator: StartSimulator, gateway: StartGateway) -> list[GatewayServer]:
    sim = simulator("aigateway", latency_s=0.05)
    return [gateway(route_to(sim), redis_url=redis_url, **SETTINGS) for _ in range(2)]


def test_redis_killed_and_restarted_under_load_loses_no_money_and_answers_no_500(
    redis_server: RedisServer, simulator: StartSimulator, gateway: StartGateway
) -> None:
    replicas = two_replicas(redis_server.url, simulator, gateway)
    key = admin("POST", f"{replicas[0].base_url}/v1/admin/keys", json={"name": "team", "budget_credits": "1000"}
                ).json()["key"]
    old = admin("POST", f"{replicas[0].base_url}/v1/admin/keys", json={"name": "old"}).json()
    assert admin("DELETE", f"{replicas[1].base_url}/v1/admin/keys/{old['id']}").status_code == 200
    spent_before = Decimal(str(usage(replicas[1], key)["spent_usd"]))

    async def kill_and_restart() -> None:
        await asyncio.to_thread(redis_server.kill)
        await asyncio.sleep(0.5)
        await asyncio.to_thread(redis_server.restart)

    answers = asyncio.run(load(replicas, key, kill_and_restart))

    charged = check_answers(answers)
    after = usage(replicas[0], key)
    assert Decimal(str(after["spent_usd"])) - spent_before == charged
    assert after["images"] == sum(1 for answer in answers if answer.status_code == 200)
    assert httpx.post(f"{replicas[1].base_url}/v1/images/generations", json=BODY, timeout=30,
                      headers={"Authorization": f"Bearer {old['key']}"}).status_code == 401
    assert {record["name"] for record in admin("GET", f"{replicas[1].base_url}/v1/admin/keys").json()["data"]} \
        == {"team", "old"}
    wait_until_nothing_is_reserved(replicas[1], key)


def test_redis_frozen_then_resumed_charges_exactly_the_images_delivered(
    redis_server: RedisServer, simulator: StartSimulator, gateway: StartGateway
) -> None:
    replicas = two_replicas(redis_server.url, simulator, gateway)
    key = admin("POST", f"{replicas[0].base_url}/v1/admin/keys", json={"name": "team", "budget_credits": "1000"}
                ).json()["key"]

    during: list[httpx.Response] = []

    async def freeze_past_the_deadline() -> None:
        """Requests in flight retry their settle until their deadline, then answer 503; their
        settles are queued in the frozen server and must do nothing when it resumes. New
        requests arriving meanwhile get 503 at once."""
        redis_server.freeze()
        try:
            await asyncio.sleep(0.2)
            async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {key}"}) as http:
                during.extend(await asyncio.gather(*(
                    http.post(f"{replica.base_url}/v1/images/generations", json=BODY) for replica in replicas)))
            await asyncio.sleep(DEADLINE_S + 0.5)
        finally:
            redis_server.thaw()
        await asyncio.sleep(0.5)  # the resumed server runs what was queued on abandoned connections

    answers = asyncio.run(load(replicas, key, freeze_past_the_deadline))

    charged = check_answers(answers + during)
    assert [answer.status_code for answer in during] == [503, 503]
    gave_up = [a for a in answers if a.status_code == 503]
    assert gave_up, "requests in flight during the freeze should have given up at their deadline"
    after = wait_until_spent(replicas[0], key, charged)  # none of the given-up requests stays charged
    assert after["images"] == sum(1 for answer in answers if answer.status_code == 200)
    wait_until_nothing_is_reserved(replicas[1], key)


def test_readiness_turns_not_ready_while_redis_is_down_and_ready_when_it_is_back(
    redis_server: RedisServer, simulator: StartSimulator, gateway: StartGateway
) -> None:
    replica = two_replicas(redis_server.url, simulator, gateway)[0]
    key = admin("POST", f"{replica.base_url}/v1/admin/keys", json={"name": "team"}).json()["key"]
    client = httpx.Client(base_url=replica.base_url, timeout=30, headers={"Authorization": f"Bearer {key}"})
    assert client.get("/readyz").status_code == 200
    redis_server.kill()
    down = client.get("/readyz")
    assert down.status_code == 503
    assert "state store" in down.json()["problems"][0]
    for path in ("/v1/images/generations", "/v1/usage"):
        answer = client.post(path, json=BODY) if path.endswith("generations") else client.get(path)
        assert answer.status_code == 503
        assert answer.headers["retry-after"]
        assert answer.json()["error"]["code"] == "state_unavailable"
    redis_server.restart()
    assert client.get("/readyz").status_code == 200
    assert client.post("/v1/images/generations", json=BODY).status_code == 200
