"""One bulk prompt sent to the gateway, tried again as ``retry.py`` says, read defensively.

The gateway's answer is a boundary like any other: a body that is not JSON, images that are not
base64 or fewer images than asked are a failure with a message, never a traceback.

What a prompt cost is read from the ``x-boltgate-cost-usd`` header (falling back on the body's
``billing`` or ``usage`` object). A replay (``x-boltgate-idempotent-replay: true``) costs nothing
now; but when an earlier try of this run may have reached the gateway (it timed out, the
connection broke, or the gateway said the key was still running), the replay is the answer to a
request this run was charged for, and the original charge, kept in the replayed body, is counted.

Every answer is read within a cap (``answer.py``): a success up to what its images could take
(or ``--max-answer-mb``), an error up to its message. An answer past its cap fails the prompt
with a message, counted at the cost the gateway's header names, and is not asked for again (it
would be the same answer).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
import orjson

from proxy.bulk.answer import ACCEPTED_ENCODINGS, ERROR_BODY_BYTES, ReadAnswer, answer_limit, describe, read_answer
from proxy.bulk.prompts import BulkPrompt
from proxy.bulk.retry import RetryPolicy, is_retryable

GENERATIONS_PATH = "/v1/images/generations"
COST_HEADER = "x-boltgate-cost-usd"
REPLAY_HEADER = "x-boltgate-idempotent-replay"
REPLAY_EXPIRED_CODE = "idempotent_replay_expired"
"""The gateway kept the answer but no longer the images (a b64 replay outlives them)."""


@dataclass(frozen=True, slots=True)
class Served:
    images: list[bytes]
    cost_usd: Decimal
    """What this run was charged for the prompt (0 for a replay of an earlier run's charge)."""
    vendor: str
    region: str
    latency_s: float
    """The answering try's round trip."""
    attempts: int
    replayed: bool
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    message: str
    attempts: int
    status: int | None = None
    cost_usd: Decimal = Decimal(0)
    """Charged although unusable (an answer that could not be read)."""
    fatal: bool = False
    """Every other prompt would fail the same way (the key is refused)."""


Outcome = Served | Failed


def _decimal(value: object) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None


def _body_cost(body: dict[str, Any]) -> Decimal | None:
    for holder in ("billing", "usage"):
        section = body.get(holder)
        if isinstance(section, dict) and (cost := _decimal(section.get("cost_usd"))) is not None:
            return cost
    return None


def _error_of(response: httpx.Response, content: bytes | None) -> tuple[str, str | None]:
    """The OpenAI error envelope's message and code, or the start of whatever came instead
    (``content`` None: the body was past ``ERROR_BODY_BYTES`` and left unread)."""
    if content is None:
        return f"{response.reason_phrase} (an error body over {ERROR_BODY_BYTES // 1024} KB, not read)", None
    try:
        error = orjson.loads(content).get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            code = error.get("code")
            return error["message"], code if isinstance(code, str) else None
    except (ValueError, AttributeError):
        pass
    snippet = content[:200].decode("utf-8", "replace").strip() or response.reason_phrase
    return snippet, None


def _images(body: dict[str, Any]) -> list[bytes]:
    data = body.get("data")
    if not isinstance(data, list):
        raise ValueError("the answer has no 'data' list")
    images = []
    for index, item in enumerate(data):
        encoded = item.get("b64_json") if isinstance(item, dict) else None
        if not isinstance(encoded, str):
            raise ValueError(f"image {index} has no b64_json")
        try:
            images.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            raise ValueError(f"image {index} is not valid base64") from None
    return images


class BulkClient:
    """Sends prompts over one ``httpx.AsyncClient`` (its pool bounded by the run's concurrency)."""

    def __init__(self, http: httpx.AsyncClient, policy: RetryPolicy,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 max_answer_bytes: int | None = None) -> None:
        """``max_answer_bytes`` caps every success answer; None: each prompt's ``answer_limit``."""
        self._http = http
        self._policy = policy
        self._sleep = sleep
        self._max_answer_bytes = max_answer_bytes

    async def _exchange(self, body: dict[str, Any], headers: dict[str, str],
                        limit: int) -> tuple[httpx.Response, ReadAnswer]:
        """One try: the answer and its body, read within ``limit`` (an error's within
        ``ERROR_BODY_BYTES``: its message is all we need)."""
        async with self._http.stream("POST", GENERATIONS_PATH, json=body, headers=headers) as response:
            cap = limit if response.status_code == 200 else ERROR_BODY_BYTES
            return response, await read_answer(response, cap)

    async def generate(self, prompt: BulkPrompt) -> Outcome:
        headers = {"Idempotency-Key": prompt.idempotency_key, "Accept-Encoding": ACCEPTED_ENCODINGS}
        body = prompt.options.body()
        limit = self._max_answer_bytes or answer_limit(prompt.options)
        may_have_run = False
        last_error = "no try was made"
        attempt = 0
        for attempt in range(1, self._policy.retries + 2):
            retry_after = None
            started = time.monotonic()
            try:
                response, answer = await self._exchange(body, headers, limit)
            except (httpx.ConnectError, httpx.ConnectTimeout) as error:
                last_error = f"cannot connect to the gateway ({type(error).__name__}: {error})"
            except (httpx.TransportError, httpx.DecodingError) as error:
                may_have_run = True  # sent, perhaps served and charged: the retry's replay tells
                last_error = f"{type(error).__name__} talking to the gateway{': ' + str(error) if str(error) else ''}"
            else:
                if response.status_code == 200 and answer.body is None:
                    return Failed(message=self._too_large(prompt, limit, answer), attempts=attempt, status=200,
                                  cost_usd=_decimal(response.headers.get(COST_HEADER)) or Decimal(0))
                if response.status_code == 200 and answer.body is not None:
                    return self._served(response, answer.body, time.monotonic() - started, attempt, may_have_run)
                message, code = _error_of(response, answer.body)
                if not is_retryable(response.status_code, code):
                    if code == REPLAY_EXPIRED_CODE:
                        message += " (it was paid for; --salt TEXT asks for new images, charged again)"
                    return Failed(message=f"{response.status_code} {message}", attempts=attempt,
                                  status=response.status_code, fatal=response.status_code == 401)
                may_have_run = may_have_run or response.status_code in (408, 409) or response.status_code >= 500
                last_error = f"{response.status_code} {message}"
                retry_after = response.headers.get("retry-after")
            if attempt <= self._policy.retries:
                await self._sleep(self._policy.delay(attempt, retry_after))
        return Failed(message=f"gave up after {attempt} tries: {last_error}", attempts=attempt)

    def _too_large(self, prompt: BulkPrompt, limit: int, answer: ReadAnswer) -> str:
        if self._max_answer_bytes is not None:
            why = "the --max-answer-mb cap"
        else:
            why = (f"the most {prompt.options.n} image(s) of {prompt.options.size} can take "
                   "(--max-answer-mb raises the cap)")
        return f"the gateway's answer is larger than {describe(limit)}, {why}; not read: {answer.refusal}"

    def _served(self, response: httpx.Response, content: bytes, latency_s: float, attempt: int,
                may_have_run: bool) -> Outcome:
        header_cost = _decimal(response.headers.get(COST_HEADER))
        replayed = response.headers.get(REPLAY_HEADER, "").lower() == "true"
        try:
            body = orjson.loads(content)
            if not isinstance(body, dict):
                raise ValueError("the answer is not a JSON object")
        except ValueError as error:
            return Failed(message=f"the gateway's answer could not be read: {error}", attempts=attempt,
                          status=200, cost_usd=header_cost or Decimal(0))
        if replayed:
            cost = (_body_cost(body) or Decimal(0)) if may_have_run else Decimal(0)
        else:
            cost = header_cost if header_cost is not None else (_body_cost(body) or Decimal(0))
        try:
            images = _images(body)
        except ValueError as error:
            return Failed(message=f"the gateway's answer could not be read: {error}", attempts=attempt,
                          status=200, cost_usd=cost)
        seed = body.get("seed")
        return Served(images=images, cost_usd=cost, vendor=response.headers.get("x-boltgate-backend", "unknown"),
                      region=response.headers.get("x-boltgate-region", ""), latency_s=latency_s,
                      attempts=attempt, replayed=replayed, seed=seed if isinstance(seed, int) else None)
