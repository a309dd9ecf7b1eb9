"""Fixtures for the HTTP tests: a clean environment and a client over two scripted vendors."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from backends.base import Capabilities
from tests.proxy.api.served_app import Client, Vendors, serving
from tests.proxy.routing.scripted_backend import ScriptedBackend


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No route, key or setting leaks in from the machine running the tests, and the embedded
    ledger of each test is its own (not ``var/data`` under the working tree)."""
    for name in list(os.environ):
        if name.startswith("BOLTGATE_") or name.endswith("_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("BOLTGATE_DATA_DIR", str(tmp_path / "boltgate-data"))


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
