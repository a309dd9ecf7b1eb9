"""Fixtures for the vendor adapters: a mocked vendor API (respx), backends on it, real tiny images."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable, Iterator, Mapping

import httpx
import pytest
import respx
from PIL import Image

from backends.vendors.backend import VendorBackend
from backends.vendors.polling import PollTiming
from backends.vendors.spec import VendorSpec

BASE_URL = "https://x.test"
FAST_POLLING = PollTiming(first_interval_s=0.001, max_interval_s=0.005)
"""Poll every few milliseconds so job lifecycles take no noticeable time."""

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
        spec: VendorSpec,
        *,
        api_key: str | None = "k",
        timeout_s: float = 5.0,
        options: Mapping[str, str] | None = None,
        poll_timing: PollTiming = FAST_POLLING,
    ) -> VendorBackend:
        backend = VendorBackend(
            spec,
            region="r1",
            base_url=BASE_URL,
            api_key=api_key,
            timeout_s=timeout_s,
            options=options,
            transport=httpx.AsyncHTTPTransport(),
            poll_timing=poll_timing,
        )
        made.append(backend)
        return backend

    yield make
    for backend in made:
        await backend.aclose()
