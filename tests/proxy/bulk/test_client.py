"""The bulk client over real HTTP on loopback, against a scripted server: every try carries the
prompt's one Idempotency-Key, the server's Retry-After is the wait, a hostile answer is a failure
with a message, and no answer is read past its cap."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from proxy.bulk.answer import answer_limit
from proxy.bulk.client import BulkClient, Failed, Served
from proxy.bulk.prompts import BulkPrompt, plan_prompts
from proxy.bulk.retry import RetryPolicy
from tests.asgi_server import AsgiServer
from tests.backends.vendors.http.scripted_server import FLOOD_LIMIT, ScriptedServer
from tests.memory_peak import heap_peak

Reply = tuple[int, dict[str, str], bytes]
PNG = b"\x89PNG\r\n\x1a\n fake"
MIB = 1024 * 1024


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


# The answer's size: a real loopback server (tests.backends.vendors.http.scripted_server) that
# never stops sending; the cap ends the read, the prompt fails with a message, memory stays flat.

@pytest.fixture
async def flooding() -> AsyncIterator[ScriptedServer]:
    running = await ScriptedServer().start()
    yield running
    await running.stop()


async def send_to(base_url: str, options: dict[str, Any] | None = None, retries: int = 0,
                  max_answer_bytes: int | None = None) -> Served | Failed:
    async def no_wait(seconds: float) -> None:
        pass

    planned = plan_prompts([(1, {"prompt": "a fox", **(options or {})})], {})[0]
    async with httpx.AsyncClient(base_url=base_url) as http:
        client = BulkClient(http, RetryPolicy(retries=retries), sleep=no_wait, max_answer_bytes=max_answer_bytes)
        return await client.generate(planned)


@pytest.mark.parametrize("path", ["/endless", "/endless-gzip"])
async def test_an_endless_answer_stops_at_the_cap_and_fails_that_prompt(flooding: ScriptedServer, path: str) -> None:
    with heap_peak() as peak:
        outcome = await send_to(flooding.base_url + path, retries=3, max_answer_bytes=MIB)
    assert isinstance(outcome, Failed) and outcome.status == 200 and outcome.attempts == 1  # not asked again
    assert "the gateway's answer is larger than 1.0 MB" in outcome.message and "--max-answer-mb" in outcome.message
    assert outcome.cost_usd == Decimal("0.040000")  # the header says it was charged: counted as spent
    assert peak.mb < 8, f"{peak.mb:.1f} MB held reading a 1 MB-capped answer"
    assert flooding.flooded < FLOOD_LIMIT  # the client hung up; the server did not run out of body


async def test_without_a_flag_the_cap_is_what_the_prompts_images_could_take(flooding: ScriptedServer) -> None:
    options = {"size": "256x256", "n": 2}
    limit = answer_limit(plan_prompts([(1, {"prompt": "a fox", **options})], {})[0].options)
    with heap_peak() as peak:
        outcome = await send_to(flooding.base_url + "/endless", options)
    assert isinstance(outcome, Failed) and f"larger than {limit / MIB:.1f} MB" in outcome.message
    assert "2 image(s) of 256x256" in outcome.message
    assert peak.mb < limit / MIB * 4


async def test_an_answer_announcing_more_than_the_cap_is_not_read(flooding: ScriptedServer) -> None:
    outcome = await send_to(flooding.base_url + f"/announce/{10**12}", max_answer_bytes=MIB)
    assert isinstance(outcome, Failed) and "announced 1000000000000 bytes" in outcome.message


async def test_an_endless_error_answer_is_read_only_for_its_message_and_retried(flooding: ScriptedServer) -> None:
    with heap_peak() as peak:
        outcome = await send_to(flooding.base_url + "/endless-error", retries=1)
    assert isinstance(outcome, Failed) and outcome.attempts == 2
    assert outcome.message == "gave up after 2 tries: 503 Scripted (an error body over 64 KB, not read)"
    assert peak.mb < 4


def test_an_answer_exactly_at_the_cap_is_read_and_one_byte_over_is_not(
    scripted: tuple[ScriptedGateway, str]
) -> None:
    app, url = scripted
    status, headers, body = ok()
    app.replies = [(status, headers, body), (status, headers, body)]

    async def go(cap: int) -> Served | Failed:
        async with httpx.AsyncClient(base_url=url) as http:
            return await BulkClient(http, RetryPolicy(retries=0), max_answer_bytes=cap).generate(prompt())

    assert isinstance(asyncio.run(go(len(body))), Served)
    over = asyncio.run(go(len(body) - 1))
    assert isinstance(over, Failed) and f"larger than {len(body) - 1} bytes" in over.message


def test_the_default_cap_grows_with_the_images_asked_for() -> None:
    def limit(**options: Any) -> int:
        return answer_limit(plan_prompts([(1, {"prompt": "x", **options})], {})[0].options)

    one = limit(size="1024x1024")
    assert 6.3 * MIB < one < 6.5 * MIB  # a 1024x1024 RGBA image, base64'd, and the envelope
    assert limit(size="1024x1024", n=4) > 4 * (one - MIB)
    assert limit(size="1536x1536", n=4) < 50 * MIB
    assert limit(size="auto") == limit(size="1536x1536")  # the largest side served: never too small
