"""``POST /v1/images/generations`` answers alike on the lean path and through the Litestar route.

Each case sends the same request to an app with the lean path (as it ships) and to one without
(``lean=False``: every generation through the Litestar route), over fresh scripted vendors, and
compares what could silently differ: status, headers (all but the request id), body and the
access line.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from litestar import Litestar, post
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.testing import AsyncTestClient
from litestar.types import Message, Receive, Scope, Send

from backends.base import BackendResult, Capabilities, GeneratedImage
from core.errors import VendorRateLimited, VendorUnavailable
from proxy.api.errors import EXCEPTION_HANDLERS
from proxy.api.images import create_image
from proxy.api.lean_generations import JOIN_BELOW, PATH, lean_generations
from proxy.gateway import Gateway
from proxy.serving.one_write import EXTENSION as ONE_WRITE
from proxy.serving.one_write import PARTS
from tests.proxy.api.served_app import Vendors, app_over, hanging_up, serving
from tests.proxy.routing.scripted_backend import ScriptedBackend, noisy_png

KITE = {"prompt": "a kite", "seed": 7, "response_format": "b64_json"}


def fresh_vendors() -> Vendors:
    return Vendors(
        text_only=ScriptedBackend("runflow", "eu", capabilities=Capabilities(image_to_image=False)),
        editor=ScriptedBackend("eachlabs", "us", capabilities=Capabilities(image_to_image=True)),
    )


def explode(vendors: Vendors) -> None:
    async def fails(*_: object) -> None:
        raise RuntimeError("bug in an adapter")

    vendors.text_only.generate = fails  # type: ignore[method-assign, assignment]


def unavailable(vendors: Vendors) -> None:
    for vendor in (vendors.text_only, vendors.editor):
        vendor.script.extend([VendorUnavailable("down", status=500)] * 3)


def rate_limited(vendors: Vendors) -> None:
    vendors.text_only.script.extend([VendorRateLimited("slow", status=429, retry_after=40)] * 3)
    vendors.editor.script.extend([VendorRateLimited("slow", status=429, retry_after=35)] * 3)


def large_image(vendors: Vendors) -> None:
    """A vendor's base64 answer of about 260 KB, held as a view into it (``backends.vendors.b64_splice``)."""
    answer = b'{"data":[{"b64_json":"' + base64.b64encode(noisy_png(256)) + b'"}]}'
    view = memoryview(answer)[len(b'{"data":[{"b64_json":"'):-len(b'"}]}')]
    vendors.text_only.script.append(BackendResult(images=[GeneratedImage(b64=view)]))


@dataclass(frozen=True)
class Case:
    method: str = "POST"
    path: str = PATH
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    prepare: Callable[[Vendors], None] | None = None


CASES = {
    "served": Case(json=KITE),
    "served as a url": Case(json={"prompt": "a kite", "seed": 7, "user": "u-7"}),
    "a large image": Case(json=KITE, prepare=large_image),
    "a key": Case(json=KITE, headers={"Authorization": "Bearer bg-team"}, settings={"api_keys": ["bg-team"]}),
    "400 bad JSON": Case(content=b'{"prompt": "a kite",', headers={"content-type": "application/json"}),
    "400 a refused field": Case(json={"prompt": "a kite", "style": "vivid"}),
    "401 no key": Case(json=KITE, settings={"api_keys": ["bg-team"]}),
    "401 a wrong key": Case(json=KITE, headers={"Authorization": "Bearer bg-guess"},
                            settings={"api_keys": ["bg-team"]}),
    "402 over the price ceiling": Case(json=KITE, headers={"x-boltgate-max-price-usd": "0.0000001"}),
    "413 over max_body_bytes": Case(json={"prompt": "k" * 2048}, settings={"max_body_bytes": 1024}),
    "429 every vendor rate limited": Case(json=KITE, prepare=rate_limited),
    "503 no vendor available": Case(json=KITE, prepare=unavailable),
    "500 an unexpected failure": Case(json=KITE, prepare=explode),
    "streamed": Case(json={**KITE, "stream": True}),
    "400 a refused stream": Case(json={**KITE, "stream": True, "n": 2}),
    "GET": Case(method="GET"),
    "HEAD": Case(method="HEAD"),
    "PUT": Case(method="PUT", json=KITE),
    "OPTIONS": Case(method="OPTIONS"),
    "a trailing slash": Case(path=PATH + "/", json=KITE),
    "a malformed Host": Case(json=KITE, headers={"host": "bad host!"}),
}


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: Any
    access: dict[str, Any]
    retry_after_ms: int | None = field(default=None, compare=False)
    """Counted down from the vendor's Retry-After as time passes: compared within a second."""


async def answer(case: Case, *, lean: bool, caplog: pytest.LogCaptureFixture) -> Answer:
    vendors = fresh_vendors()
    if case.prepare is not None:
        case.prepare(vendors)
    caplog.clear()
    async with serving(vendors.routes(), lean=lean, **case.settings) as client:
        response = await client.request(case.method, case.path, json=case.json, content=case.content,
                                         headers=case.headers)
    (line,) = [record for record in caplog.records if record.name == "boltgate.access"]
    access = {name: value for name, value in line.fields.items()  # type: ignore[attr-defined]
              if name not in ("request_id", "latency_ms")}
    headers = [(name, value if name != b"retry-after-ms" else b"(counting down)")
               for name, value in response.headers.raw if name not in (b"x-request-id", b"date")]
    retry_after_ms = response.headers.get("retry-after-ms")
    return Answer(response.status_code, headers, comparable(response.content), access,
                  None if retry_after_ms is None else int(retry_after_ms))


def comparable(body: bytes) -> Any:
    """The body without the clock's values (``created``, ``created_at``)."""
    if body.startswith(b"event: "):
        return [[line if not line.startswith(b"data: ") else without_time(orjson.loads(line[6:]))
                 for line in event.split(b"\n")] for event in body.split(b"\n\n")]
    try:
        return without_time(orjson.loads(body))
    except orjson.JSONDecodeError:
        return body


def without_time(value: Any) -> Any:
    """``value`` without its clock readings, and each image url without its random name."""
    if not isinstance(value, dict):
        return value
    kept = {name: item for name, item in value.items() if name not in ("created", "created_at")}
    if isinstance(kept.get("data"), list):
        kept["data"] = [{**item, "url": item["url"].rsplit("/", 1)[0]} if "url" in item else item
                        for item in kept["data"]]
    return kept


@pytest.mark.parametrize("name", list(CASES))
async def test_the_lean_path_answers_as_the_litestar_route(name: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    case = CASES[name]

    lean = await answer(case, lean=True, caplog=caplog)
    lean_log = caplog.text
    litestar = await answer(case, lean=False, caplog=caplog)

    assert lean == litestar
    if lean.retry_after_ms is not None:
        assert litestar.retry_after_ms is not None
        assert abs(lean.retry_after_ms - litestar.retry_after_ms) < 1000
    if name.startswith("500"):
        assert "unexpected error on POST /v1/images/generations" in lean_log
        assert "unexpected error on POST /v1/images/generations" in caplog.text


async def test_each_case_gets_its_status(caplog: pytest.LogCaptureFixture) -> None:
    """The comparison above would pass if both paths failed alike: each case's status is pinned."""
    caplog.set_level(logging.INFO)
    statuses = {name: (await answer(case, lean=True, caplog=caplog)).status for name, case in CASES.items()}

    assert statuses == {
        "served": 200, "served as a url": 200, "a large image": 200, "a key": 200, "400 bad JSON": 400,
        "400 a refused field": 400, "401 no key": 401, "401 a wrong key": 401, "402 over the price ceiling": 402,
        "413 over max_body_bytes": 413, "429 every vendor rate limited": 429, "503 no vendor available": 503,
        "500 an unexpected failure": 500, "streamed": 200, "400 a refused stream": 400, "GET": 405, "HEAD": 405,
        "PUT": 405, "OPTIONS": 204, "a trailing slash": 200, "a malformed Host": 400,
    }


@dataclass
class Recorded:
    scope: Scope
    sent: list[Message]
    received: bytes = b""


async def recorded(app: Litestar, case: Case, *, one_write: bool = False) -> Recorded:
    """One request, with the scope and the messages the app's ASGI handler saw and sent.
    ``one_write``: offered as ``boltgate serve`` offers it, a start message's ``PARTS`` passed on
    to the test client as the body messages uvicorn would send from them."""
    inner = app.asgi_handler
    seen: list[Recorded] = []

    async def recording(scope: Scope, receive: Receive, send: Send) -> None:
        if one_write:
            scope.setdefault("extensions", {})[ONE_WRITE] = {}  # type: ignore[index]
        seen.append(Recorded(scope, []))

        async def sending(message: Message) -> None:
            seen[-1].sent.append(message)
            parts = message.get(PARTS)
            if parts is None:
                await send(message)
                return
            await send({name: value for name, value in message.items() if name != PARTS})  # type: ignore[misc]
            for index, part in enumerate(parts):
                await send({"type": "http.response.body", "body": part, "more_body": index < len(parts) - 1})

        await inner(scope, receive, sending)

    app.asgi_handler = recording
    async with AsyncTestClient(app=app) as client:
        response = await client.request(case.method, case.path, json=case.json)
    (only,) = seen
    only.received = response.content
    return only


@pytest.mark.parametrize("lean", [True, False])
async def test_the_lean_path_serves_generations_and_the_router_does_not_run(lean: bool) -> None:
    served = await recorded(app_over(fresh_vendors().routes(), lean=lean), CASES["served"])

    assert served.sent[0]["status"] == 200
    assert ("path_template" in served.scope) is not lean  # Litestar's router marks the scope it routed


async def test_a_large_answer_leaves_in_pieces_and_the_base64_is_not_joined() -> None:
    vendors = fresh_vendors()
    large_image(vendors)
    served = await recorded(app_over(vendors.routes()), CASES["served"])

    bodies = [message for message in served.sent if message["type"] == "http.response.body"]
    assert len(bodies) == 3  # the JSON before the base64, the base64, the JSON after it
    assert [message["more_body"] for message in bodies] == [True, True, False]
    whole = b"".join(bytes(message["body"]) for message in bodies)
    assert int(dict(served.sent[0]["headers"])[b"content-length"]) == len(whole) > JOIN_BELOW
    assert orjson.loads(whole)["data"][0]["b64_json"]


@pytest.mark.parametrize("prepare", [large_image, None, unavailable], ids=["large", "small", "an error"])
async def test_where_the_server_takes_one_write_the_answer_is_one_message_with_the_same_bytes(
    prepare: Callable[[Vendors], None] | None
) -> None:
    answers = []
    for one_write in (True, False):
        vendors = fresh_vendors()
        if prepare is not None:
            prepare(vendors)
        answers.append(await recorded(app_over(vendors.routes()), CASES["served"], one_write=one_write))
    whole, in_messages = answers

    (start,) = whole.sent
    assert start["type"] == "http.response.start" and PARTS in start
    assert PARTS not in in_messages.sent[0] and len(in_messages.sent) > 1
    assert start["status"] == in_messages.sent[0]["status"]
    assert without_time(orjson.loads(whole.received)) == without_time(orjson.loads(in_messages.received))
    assert int(dict(start["headers"])[b"content-length"]) == len(whole.received)


async def test_a_small_answer_leaves_in_one_piece() -> None:
    served = await recorded(app_over(fresh_vendors().routes()), CASES["served"])

    assert [message["type"] for message in served.sent] == ["http.response.start", "http.response.body"]


class Built:
    gateway: Gateway | None = None


def test_the_lean_path_steps_aside_where_litestar_would_add_cors() -> None:
    def app(**config: Any) -> Litestar:
        return Litestar(route_handlers=[post(PATH)(create_image)], exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
                        dependencies={"gateway": Provide(lambda: None, sync_to_thread=False)}, **config)

    plain, with_cors = app(), app(cors_config=CORSConfig())

    assert lean_generations(plain, Built()) is not plain.asgi_handler
    assert lean_generations(with_cors, Built()) is with_cors.asgi_handler


async def test_a_failure_to_encode_the_answer_is_the_500_envelope_on_both_paths(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    def fails(_: object) -> None:
        raise TypeError("not JSON")

    monkeypatch.setattr("proxy.images.body.images_body_parts", fails)
    monkeypatch.setattr("proxy.api.lean_generations.images_body_parts", fails)

    lean = await answer(CASES["served"], lean=True, caplog=caplog)
    litestar = await answer(CASES["served"], lean=False, caplog=caplog)

    assert lean == litestar
    assert (lean.status, lean.body["error"]["code"]) == (500, "internal_error")


@pytest.mark.parametrize("lean", [True, False])
async def test_a_client_that_hangs_up_cancels_its_generation_on_both_paths(
    lean: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    vendors = fresh_vendors()
    vendors.text_only.script.append("hang")
    app = app_over(vendors.routes(), lean=lean)
    inner = app.asgi_handler

    app.asgi_handler = hanging_up(inner, lambda: bool(vendors.text_only.calls))  # once the vendor works on it
    async with AsyncTestClient(app=app) as client:
        response = await client.post(PATH, json=KITE)

    assert response.status_code == 499
    assert vendors.text_only.cancelled == 1
    (line,) = [record for record in caplog.records if record.name == "boltgate.access"]
    assert (line.fields["status"], line.fields["error"]) == (499, "client_disconnected")  # type: ignore[attr-defined]
