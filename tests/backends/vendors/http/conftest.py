"""Fixtures for the HTTP client contract: each implementation in turn, on each event loop, and a
scripted server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import uvloop

from backends.vendors.http import AiohttpClient, HttpClient, HttpClientKind, HttpxClient, LeanClient, make_http_client
from tests.backends.vendors.http.scripted_server import ScriptedServer

MakeClient = Callable[..., HttpClient]
IMPLEMENTATIONS: dict[HttpClientKind, Callable[..., HttpClient]] = {
    "lean": LeanClient, "aiohttp": AiohttpClient, "httpx": HttpxClient,
}


@pytest.fixture(params=["asyncio", "uvloop"])
def event_loop_policy(request: pytest.FixtureRequest) -> asyncio.AbstractEventLoopPolicy:
    """Every test runs on asyncio's own loop and on uvloop (the gateway's): their transports
    differ (uvloop's read into a buffered protocol's buffer themselves)."""
    return uvloop.EventLoopPolicy() if request.param == "uvloop" else asyncio.DefaultEventLoopPolicy()


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def kind(request: pytest.FixtureRequest) -> HttpClientKind:
    """Every test that uses a client runs once per implementation."""
    chosen: HttpClientKind = request.param
    return chosen


@pytest.fixture
async def client(kind: HttpClientKind) -> AsyncIterator[HttpClient]:
    """The implementation under test, built as the wiring builds it."""
    built = make_http_client(kind)
    yield built
    await built.aclose()


@pytest.fixture
async def make_client(kind: HttpClientKind) -> AsyncIterator[MakeClient]:
    """The implementation under test with other limits (closed after the test)."""
    made: list[HttpClient] = []

    def make(**limits: int) -> HttpClient:
        made.append(IMPLEMENTATIONS[kind](**limits))
        return made[-1]

    yield make
    for built in made:
        await built.aclose()


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    running = await ScriptedServer().start()
    yield running
    await running.stop()


@pytest.fixture
async def internal() -> AsyncIterator[ScriptedServer]:
    """A second loopback server: an internal address a client must never reach."""
    running = await ScriptedServer().start()
    yield running
    await running.stop()
