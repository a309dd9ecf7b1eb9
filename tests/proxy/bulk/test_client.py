"""The bulk client over real HTTP on loopback, against a scripted server: every try carries the
prompt's one Idempotency-Key, the server's Retry-After is the wait, a hostile answer is a failure
with a message."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from proxy.bulk.client import BulkClient, Failed, Served
from proxy.bulk.prompts import BulkPrompt, plan_prompts
from proxy.bulk.retry import RetryPolicy
from tests.asgi_server import AsgiServer

Reply = tuple[int, dict[str, str], bytes]
PNG = b"\x89PNG\r\n\x1a\n fake"


def ok(cost: str = "0.040000", replay: bool = False, body_cost: str = "0.040000", images: int = 1) -> Reply:
    headers = {"x-boltgate-cost-usd": "0.000000" if replay else cost, "x-boltgate-backend": "callmissed"}
    if replay:
        headers["x-boltgate-idempotent-replay"] = "true"
    body = {"data": [{"b64_json": base64.b64encode(PNG).decode()}] * images, "billing": {"cost_usd": body_cost}}
    return 200, headers, json.dumps(body).encode()


def error(status: int, code: str = "x", headers: dict[str, str] | None = None) -> Reply:
    return status, headers or {}, json.dumps({"error": {"message": f"said {status}", "code": code}}).encode()


class ScriptedGateway:
    """Answers each POST with the next scripted reply; records the Idempotency-Key of each."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.keys: list[str | None] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        while (await receive()).get("more_body"):
            pass
        self.keys.append(dict(scope["headers"]).get(b"idempotency-key", b"").decode() or None)
        status, headers, body = self.replies.pop(0)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(k.encode(), v.encode()) for k, v in headers.items()]})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[ScriptedGateway, str]]:
    app = ScriptedGateway()
    with AsgiServer(app) as running:  # type: ignore[arg-type]
        yield app, running.url


@pytest.fixture
def scripted(server: tuple[ScriptedGateway, str]) -> tuple[ScriptedGateway, str]:
    app, _ = server
    app.replies, app.keys = [], []
    return server


def prompt() -> BulkPrompt:
    return plan_prompts([(1, {"prompt": "a fox"})], {})[0]


def send(url: str, retries: int = 3) -> tuple[Served | Failed, list[float]]:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def go() -> Served | Failed:
        async with httpx.AsyncClient(base_url=url) as http:
            return await BulkClient(http, RetryPolicy(retries=retries, backoff_s=0.01), sleep=sleep).generate(prompt())
    return asyncio.run(go()), waits


def test_each_retry_waits_the_servers_retry_after_and_sends_the_same_key(
    scripted: tuple[ScriptedGateway, str]
) -> None:
    app, url = scripted
    app.replies = [error(429, headers={"retry-after": "2"}), error(503, headers={"retry-after": "5"}),
                   error(409, "idempotency_conflict"), ok()]
    outcome, waits = send(url)
    assert isinstance(outcome, Served) and outcome.attempts == 4 and outcome.cost_usd == Decimal("0.040000")
    assert waits[:2] == [2.0, 5.0] and len(waits) == 3
    assert app.keys == [prompt().idempotency_key] * 4


def test_a_final_refusal_is_not_retried_and_a_401_stops_the_run(scripted: tuple[ScriptedGateway, str]) -> None:
    app, url = scripted
    app.replies = [error(400), error(401), error(409, "idempotency_key_reused")]
    for status in (400, 401, 409):
        outcome, waits = send(url)
        assert isinstance(outcome, Failed) and outcome.status == status and waits == []
        assert outcome.fatal is (status == 401) and f"said {status}" in outcome.message


def test_an_expired_replay_says_how_to_ask_again(scripted: tuple[ScriptedGateway, str]) -> None:
    app, url = scripted
    app.replies = [error(409, "idempotent_replay_expired")]
    outcome, waits = send(url)
    assert isinstance(outcome, Failed) and waits == [] and "--salt" in outcome.message


def test_retries_run_out_with_the_last_error_said(scripted: tuple[ScriptedGateway, str]) -> None:
    app, url = scripted
    app.replies = [error(503)] * 3
    outcome, waits = send(url, retries=2)
    assert isinstance(outcome, Failed) and outcome.attempts == 3 and len(waits) == 2
    assert outcome.message == "gave up after 3 tries: 503 said 503"


def test_a_replay_on_the_first_try_costs_this_run_nothing(scripted: tuple[ScriptedGateway, str]) -> None:
    app, url = scripted
    app.replies = [ok(replay=True)]
    outcome, _ = send(url)
    assert isinstance(outcome, Served) and outcome.replayed and outcome.cost_usd == 0


def test_a_replay_after_a_try_that_may_have_run_counts_the_original_charge(
    scripted: tuple[ScriptedGateway, str]
) -> None:
    app, url = scripted
    app.replies = [error(409, "idempotency_conflict"), ok(replay=True, body_cost="0.080000")]
    outcome, _ = send(url)
    assert isinstance(outcome, Served) and outcome.replayed and outcome.cost_usd == Decimal("0.080000")


@pytest.mark.parametrize(("body", "message"), [
    (b"<html>oops</html>", "could not be read"),
    (b'["not", "an", "object"]', "not a JSON object"),
    (b'{"data": "nope"}', "no 'data' list"),
    (b'{"data": [{"url": "http://x"}]}', "image 0 has no b64_json"),
    (b'{"data": [{"b64_json": "***"}]}', "image 0 is not valid base64"),
])
def test_a_hostile_answer_is_a_failure_with_a_message(
    scripted: tuple[ScriptedGateway, str], body: bytes, message: str
) -> None:
    app, url = scripted
    app.replies = [(200, {"x-boltgate-cost-usd": "0.040000"}, body)]
    outcome, _ = send(url)
    assert isinstance(outcome, Failed) and message in outcome.message
    assert outcome.cost_usd == Decimal("0.040000")  # charged, and counted as spent
