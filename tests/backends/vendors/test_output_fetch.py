"""A hostile vendor on loopback: every output URL it names is fetched under the outbound policy.

Real servers, each production HTTP client in turn (lean, aiohttp and httpx, built as the wiring builds
them): the vendor's answers name internal addresses, redirect there, carry credentials, flood,
bomb and drip. The vendor had already answered (and billed), so each case ends in
``UnusableOutput`` caused by the refusal (the router fails over, the client is never charged),
with no request reaching the internal service and memory bounded.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest

from backends.vendors.backend import VendorBackend, route_policy
from backends.vendors.http import HttpClientKind, make_http_client
from backends.vendors.output_fetch import FetchLimits
from backends.vendors.registry import VENDOR_SPECS
from core.deadline import Deadline
from core.errors import (
    AmbiguousCreate,
    BackendError,
    UnsafeVendorUrl,
    UnusableOutput,
    VendorBodyTooLarge,
    VendorProtocolError,
    VendorTimeout,
)
from core.request import ImageRequest
from tests.backends.vendors.hostile import HostileWorld, gzip_bomb, png_declaring, world_fixture
from tests.memory_peak import heap_peak

KEY = "sk-hostile-test-key-0123456789"


@pytest.fixture
async def world() -> AsyncIterator[HostileWorld]:
    async for started in world_fixture():
        yield started


@pytest.fixture(params=["lean", "aiohttp", "httpx"])
def kind(request: pytest.FixtureRequest) -> HttpClientKind:
    chosen: HttpClientKind = request.param
    return chosen


@pytest.fixture
async def backends() -> AsyncIterator[list[VendorBackend]]:
    made: list[VendorBackend] = []
    yield made
    for backend in made:
        await backend.aclose()


def vendor_backend(world: HostileWorld, made: list[VendorBackend], kind: HttpClientKind,
                   limits: FetchLimits | None = None, trusted_hosts: tuple[str, ...] = (),
                   timeout_s: float = 5.0) -> VendorBackend:
    """aigateway's adapter on the hostile vendor, its client of ``kind`` built as the wiring does.

    ``timeout_s`` is the route's: it caps every generation, whatever deadline the caller gives."""
    limits = limits or FetchLimits()
    client = make_http_client(kind, policy=route_policy(world.vendor_server.url, trusted_hosts),
                              max_answer_bytes=limits.max_answer_bytes, max_redirects=limits.max_redirects)
    backend = VendorBackend(VENDOR_SPECS["aigateway"], region="r1", base_url=world.vendor_server.url,
                            api_key=KEY, timeout_s=timeout_s, limits=limits, http_client=client)
    made.append(backend)
    return backend


def caused_by(raised: pytest.ExceptionInfo[UnusableOutput], cause: type[BackendError]) -> None:
    """The refusal behind a billed answer's ``UnusableOutput`` (never retried, never charged)."""
    assert raised.value.billed and not raised.value.retryable
    assert isinstance(raised.value.__cause__, cause), repr(raised.value.__cause__)


async def generate(backend: VendorBackend, seconds: float = 5.0) -> Any:
    return await backend.generate(ImageRequest(prompt="a cat"), Deadline(seconds))


async def test_an_image_on_the_vendors_own_origin_is_fetched(
    world: HostileWorld, backends: list[VendorBackend], kind: HttpClientKind
) -> None:
    world.vendor.output_url = f"{world.vendor_server.url}/img/ok.png"
    result = await generate(vendor_backend(world, backends, kind))
    assert result.images[0].format == "png"
    fetched = [headers for path, headers in world.vendor.recorder.requests if path == "/img/ok.png"]
    assert fetched and "Authorization" not in fetched[0]  # the key goes to the API only


def internal_urls(world: HostileWorld) -> list[str]:
    port = world.internal_server.port
    return [
        f"http://127.0.0.1:{port}/latest/meta-data/",  # loopback, plain http
        f"https://127.0.0.1:{port}/latest/meta-data/",  # loopback over https
        f"https://localhost:{port}/latest/meta-data/",  # a name that resolves to loopback
        f"https://[::ffff:127.0.0.1]:{port}/x",  # IPv4-mapped IPv6
        "https://169.254.169.254/latest/meta-data/",  # cloud metadata
        "https://10.0.0.1/internal",
        "https://[::1]/x",
        "https://[fd00:ec2::254]/latest/meta-data/",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_INFO",
    ]


async def test_internal_addresses_are_never_fetched(
    world: HostileWorld, backends: list[VendorBackend], kind: HttpClientKind
) -> None:
    backend = vendor_backend(world, backends, kind)
    for url in internal_urls(world):
        world.vendor.output_url = url
        with pytest.raises(UnusableOutput) as raised:
            await generate(backend)
        caused_by(raised, UnsafeVendorUrl if url.startswith("http") else VendorProtocolError)
    assert world.internal.requests == []


async def test_a_redirect_to_an_internal_address_is_refused_at_that_hop(
    world: HostileWorld, backends: list[VendorBackend], kind: HttpClientKind
) -> None:
    backend = vendor_backend(world, backends, kind)
    for target in (f"{world.internal_server.url}/latest/meta-data/iam",
                   f"https://localhost:{world.internal_server.port}/x"):
        world.vendor.output_url = f"{world.vendor_server.url}/img/redirect?to={target}"
        with pytest.raises(UnusableOutput) as raised:
            await generate(backend)
        caused_by(raised, UnsafeVendorUrl)
    assert world.internal.requests == []


async def test_credentials_in_an_output_url_are_never_sent(
    world: HostileWorld, backends: list[VendorBackend], kind: HttpClientKind
) -> None:
    host = world.vendor_server.url.removeprefix("http://")
    world.vendor.output_url = f"http://user:secret@{host}/img/ok.png"
    with pytest.raises(UnusableOutput, match="credentials") as raised:
        await generate(vendor_backend(world, backends, kind))
    caused_by(raised, UnsafeVendorUrl)
    assert all("Authorization" not in headers for _, headers in world.vendor.recorder.requests[1:])
    assert "/img/ok.png" not in world.vendor.recorder.paths


async def test_redirects_stop_after_the_limit(
    world: HostileWorld, backends: list[VendorBackend], kind: HttpClientKind
) -> None:
    world.vendor.output_url = f"{world.vendor_server.url}/img/loop"
    with pytest.raises(UnusableOutput, match="more than 2") as raised:
        await generate(vendor_backend(world, backends, kind, limits=FetchLimits(max_redirects=2)))
    caused_by(raised, VendorProtocolError)
    assert world.vendor.recorder.paths.count("/img/loop") == 3


async def test_a_host_the_operator_trusts_may_be_private(
    world: HostileWorld, backends: list[VendorBackend], kind: HttpClientKind
) -> None:
    world.vendor.output_url = f"{world.internal_server.url}/cdn/1.png"
    backend = vendor_backend(world, backends, kind, trusted_hosts=(f"127.0.0.1:{world.internal_server.port}",))
    result = await generate(backend)
    assert result.images[0].format == "png" and world.internal.paths == ["/cdn/1.png"]


@pytest.mark.parametrize("path", ["/img/flood?mb=256", "/img/declared-flood", "/img/gzip-bomb?mb=256"])
async def test_an_oversized_body_is_cut_off_at_the_cap(
    world: HostileWorld, backends: list[VendorBackend], kind: HttpClientKind, path: str
) -> None:
    world.vendor.output_url = f"{world.vendor_server.url}{path}"
    gzip_bomb(256)  # made before the request's deadline runs (seconds of compressing on a loaded machine)
    # 30 s for the route as for the call: the route's 5 s would cap the call's 30 (reading up to the
    # cap under tracemalloc on a loaded machine overran it, a VendorTimeout instead of the cap).
    backend = vendor_backend(world, backends, kind, limits=FetchLimits(max_image_bytes=4 * 1024 * 1024),
                             timeout_s=30)
    with heap_peak() as peak, pytest.raises(UnusableOutput) as raised:
        await generate(backend, seconds=30)
    caused_by(raised, VendorBodyTooLarge)
    assert peak.mb < 40, f"reading {path} grew the heap by {peak.mb:.0f} MB"


@pytest.mark.parametrize(("path", "match"), [
    ("/img/html", "not PNG, JPEG or WebP"),
    ("/img/corrupt.png", "corrupt"),
    ("/img/bomb.png", "declares more than"),
])
async def test_what_is_not_a_sound_image_is_a_protocol_error(
    world: HostileWorld, backends: list[VendorBackend], kind: HttpClientKind, path: str, match: str
) -> None:
    world.vendor.output_url = f"{world.vendor_server.url}{path}"
    with heap_peak() as peak, pytest.raises(UnusableOutput, match=match):
        await generate(vendor_backend(world, backends, kind))
    assert peak.mb < 40


async def test_a_slow_drip_ends_with_the_routes_time(
    world: HostileWorld, backends: list[VendorBackend], kind: HttpClientKind
) -> None:
    world.vendor.output_url = f"{world.vendor_server.url}/img/drip"
    with pytest.raises(UnusableOutput) as raised:
        await generate(vendor_backend(world, backends, kind), seconds=1.0)
    caused_by(raised, VendorTimeout)


async def test_a_vendor_answer_is_read_up_to_its_cap(
    world: HostileWorld, backends: list[VendorBackend], kind: HttpClientKind
) -> None:
    world.vendor.output_url = "x" * 200_000
    backend = vendor_backend(world, backends, kind, limits=FetchLimits(max_answer_bytes=100_000))
    with pytest.raises(AmbiguousCreate) as raised:  # an answer we would not read: maybe a billed image
        await generate(backend)
    assert isinstance(raised.value.__cause__, VendorBodyTooLarge)


async def test_a_vendor_error_echoing_our_key_is_scrubbed(
    world: HostileWorld, backends: list[VendorBackend], kind: HttpClientKind
) -> None:
    world.vendor.error_body = (b'{"error": {"message": "upstream failed; request headers were '
                               b'Authorization: Bearer ' + KEY.encode() + b'", "code": "boom"}}')
    with pytest.raises(AmbiguousCreate) as raised:  # a 5xx answering a generation: it may have run
        await generate(vendor_backend(world, backends, kind))
    assert KEY not in str(raised.value) and KEY[:12] not in raised.value.message
    assert "[redacted]" in raised.value.message


async def test_a_base64_image_declaring_too_many_pixels_is_refused_before_any_decode(
    world: HostileWorld, backends: list[VendorBackend], kind: HttpClientKind
) -> None:
    world.vendor.output_b64 = base64.b64encode(png_declaring(50_000, 50_000)).decode()
    with heap_peak() as peak, pytest.raises(UnusableOutput, match=r"declares|no readable header"):
        await generate(vendor_backend(world, backends, kind))
    assert peak.mb < 40
