"""Whatever a client sends, the answer is 200 or a 4xx in OpenAI's envelope: never a 500.

Property-based: hypothesis writes request bodies from the real field names (and stray ones) with
values of every JSON type, and headers that reach the gateway (price ceiling, idempotency key).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import TestClient

from proxy.api.openai_request import OpenAIImageBody
from tests.proxy.api.served_app import app_over
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to

FIELDS = [*OpenAIImageBody.model_fields, "colour", "prompt "]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40)
    | st.sampled_from(["1024x1024", "256x256", "auto", "url", "b64_json", "png", "webp", "sdxl-lightning", "1e400"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
VALID = {"prompt": "a lighthouse", "size": "256x256", "response_format": "b64_json"}
ONE_FIELD_OFF = st.builds(lambda field, value: {**VALID, field: value}, st.sampled_from(FIELDS), JSON_VALUES)
"""A valid body with one field replaced: reaches past validation into routing and billing."""
ANY_FIELDS = st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=8)
BODIES = st.just(VALID) | ONE_FIELD_OFF | ANY_FIELDS | JSON_VALUES


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient[Litestar]]:
    # Module-scoped, so before any per-test data directory: the ledger stays in memory.
    with TestClient(app=app_over([route_to(ScriptedBackend("callmissed"))], state_backend="memory")) as test_client:
        yield test_client


def assert_openai_answer(status: int, body: Any) -> None:
    assert status < 500, body
    if status >= 400:
        assert set(body["error"]) == {"message", "type", "param", "code"}
        assert body["error"]["message"]


def test_generations_never_answer_500(client: TestClient[Litestar]) -> None:
    statuses: list[int] = []

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(body=BODIES, ceiling=st.none() | st.text(max_size=12), idempotency=st.none() | st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=20))
    def answer_is_openai_shaped(body: Any, ceiling: str | None, idempotency: str | None) -> None:
        headers = {"content-type": "application/json"}
        if ceiling is not None and ceiling.isprintable() and ceiling.isascii():
            headers["x-boltgate-max-price-usd"] = ceiling
        if idempotency:
            headers["idempotency-key"] = idempotency
        response = client.post("/v1/images/generations", content=json.dumps(body), headers=headers)
        assert_openai_answer(response.status_code, response.json())
        statuses.append(response.status_code)

    answer_is_openai_shaped()
    # The bodies are not all refused at the door: some were served end to end.
    assert statuses.count(200) >= 5, statuses


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_never_answer_500(client: TestClient[Litestar], raw: bytes) -> None:
    response = client.post("/v1/images/generations", content=raw, headers={"content-type": "application/json"})
    assert_openai_answer(response.status_code, response.json())


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=st.dictionaries(st.sampled_from([*FIELDS, "strength"]), st.text(max_size=20), max_size=6),
       image=st.binary(max_size=64))
def test_edits_never_answer_500(client: TestClient[Litestar], fields: dict[str, str], image: bytes) -> None:
    response = client.post("/v1/images/edits", data=fields, files={"image": ("in.png", image, "image/png")})
    assert_openai_answer(response.status_code, response.json())


def multipart(value: bytes, charset: str | None, image: bytes) -> bytes:
    content_type = b"" if charset is None else b"Content-Type: text/plain; charset=" + charset.encode() + b"\r\n"
    return (b'--b\r\nContent-Disposition: form-data; name="prompt"\r\n' + content_type + b"\r\n" + value + b"\r\n"
            b'--b\r\nContent-Disposition: form-data; name="image"; filename="in.png"\r\n'
            b"Content-Type: image/png\r\n\r\n" + image + b"\r\n--b--\r\n")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.binary(max_size=20) | st.sampled_from([b"\xff\xfe", b"caf\xe9", b"\xc3\x28"]),
       charset=st.none() | st.sampled_from(["utf-8", "latin-1", "utf-16", "x-unknown", "rot13", "zlib_codec", ""]))
def test_edits_with_any_bytes_in_any_charset_never_answer_500(client: TestClient[Litestar], value: bytes,
                                                             charset: str | None) -> None:
    response = client.post("/v1/images/edits", content=multipart(value, charset, b"\x89PNG\r\n\x1a\n"),
                           headers={"content-type": "multipart/form-data; boundary=b"})
    assert_openai_answer(response.status_code, response.json())


def test_a_form_field_that_is_not_utf8_is_named_as_such(client: TestClient[Litestar]) -> None:
    response = client.post("/v1/images/edits", content=multipart(b"\xff\xfe", None, b"\x89PNG\r\n\x1a\n"),
                           headers={"content-type": "multipart/form-data; boundary=b"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_form_encoding"
