"""Fixtures for the HTTP tests: a clean environment and a client over two scripted vendors."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from backends.base import Capabilities
from tests.proxy.api.served_app import Client, Vendors, serving
from tests.proxy.routing.scripted_backend import ScriptedBackend


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No route, key or setting leaks in from the machine running the tests."""
    for name in list(os.environ):
        if name.startswith("BOLTGATE_") or name.endswith("_API_KEY"):
            monkeypatch.delenv(name)


@pytest.fixture
def vendors() -> Vendors:
    return Vendors(
        text_only=ScriptedBackend("runflow", "eu", capabilities=Capabilities(image_to_image=False)),
        editor=ScriptedBackend("eachlabs", "us", capabilities=Capabilities(image_to_image=True)),
    )


@pytest.fixture
async def client(vendors: Vendors) -> AsyncIterator[Client]:
    async with serving(vendors.routes()) as client:
        yield client
