"""Fixtures for the vendor adapters: a mocked vendor API (respx), backends on it, real tiny images.

The backends run on ``HttpxClient``, which respx intercepts; the contract suite in ``http/`` holds
it and the default ``AiohttpClient`` to the same behaviour on real sockets.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable, Iterator, Mapping

import pytest
import respx
from PIL import Image

from backends.vendors.backend import VendorBackend, route_policy
from backends.vendors.http import HttpxClient
from backends.vendors.output_fetch import FetchLimits
from backends.vendors.spec import VendorSpec

BASE_URL = "https://x.test"
FAST_POLL_S = 0.001
"""Job lifecycles take no noticeable time in adapter tests."""

MakeBackend = Callable[..., VendorBackend]


def _encode(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 40, 90)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def base_url() -> str:
    return BASE_URL


@pytest.fixture(scope="session")
def png() -> bytes:
    return _encode("PNG")


@pytest.fixture(scope="session")
def jpeg() -> bytes:
    return _encode("JPEG")


@pytest.fixture
def vendor_api() -> Iterator[respx.MockRouter]:
    """The vendor at ``BASE_URL``: relative routes are on it; an unmocked call fails the test."""
    with respx.mock(base_url=BASE_URL, assert_all_called=False, assert_all_mocked=True) as router:
        yield router


@pytest.fixture
async def make_backend() -> AsyncIterator[MakeBackend]:
    made: list[VendorBackend] = []

    def make(
        spec: VendorSpec, *, api_key: str | None = "k", timeout_s: float = 5.0,
        options: Mapping[str, str] | None = None, poll_interval_s: float | None = FAST_POLL_S,
        limits: FetchLimits | None = None,
    ) -> VendorBackend:
        """Polls every millisecond unless ``poll_interval_s`` says otherwise (None: the vendor's
        documented pace)."""
        backend = VendorBackend(
            spec,
            region="r1",
            base_url=BASE_URL,
            api_key=api_key,
            timeout_s=timeout_s,
            options=options,
            poll_interval_s=poll_interval_s,
            limits=limits,
            http_client=HttpxClient(policy=route_policy(BASE_URL)),
        )
        made.append(backend)
        return backend

    yield make
    for backend in made:
        await backend.aclose()
