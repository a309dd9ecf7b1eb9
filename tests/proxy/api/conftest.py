"""Fixtures for the HTTP tests: a client over two scripted vendors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from backends.base import Capabilities
from tests.proxy.api.served_app import Client, Vendors, serving
from tests.proxy.routing.scripted_backend import ScriptedBackend


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
