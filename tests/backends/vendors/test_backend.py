"""The shared HTTP mechanics: every vendor meets network failures the same way."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
import respx

from backends.base import Backend, Capabilities
from backends.vendors.backend import VendorBackend
from backends.vendors.messages import HttpCall, VendorOutput
from backends.vendors.openai_style import openai_error_fields
from backends.vendors.registry import VENDOR_SPECS
from backends.vendors.spec import VendorFacts, VendorSpec
from core.deadline import Deadline
from core.errors import (
    AmbiguousCreate,
    ContentFiltered,
    UnsafeVendorUrl,
    UnusableOutput,
    VendorTimeout,
    VendorUnavailable,
    VendorUnreachable,
)
from core.request import ImageRequest

MakeBackend = Callable[..., VendorBackend]

ALL_VENDORS = sorted(VENDOR_SPECS)


def fixed_answer(output: VendorOutput) -> VendorSpec:
    """A vendor whose every answer reads as ``output``."""
    return VendorSpec(
        name="fixed",
        capabilities=Capabilities(),
        error_fields=openai_error_fields,
        build_request=lambda request, options: HttpCall("POST", "/go"),
        parse_output=lambda answer: output,
        facts=VendorFacts(default_base_url=None, key_env="FIXED_API_KEY", price_key="fixed"),
    )


@pytest.mark.parametrize("vendor", ALL_VENDORS)
async def test_a_refused_connection_is_unavailable(
    vendor_api: respx.MockRouter, make_backend: MakeBackend, vendor: str
) -> None:
    vendor_api.route().mock(side_effect=httpx.ConnectError("connection refused"))
    with pytest.raises(VendorUnavailable, match="unreachable") as caught:
        await make_backend(VENDOR_SPECS[vendor]).generate(ImageRequest(prompt="a cat"), Deadline(5))
    assert caught.value.retryable


@pytest.mark.parametrize("vendor", ALL_VENDORS)
async def test_a_connect_that_timed_out_sent_nothing_and_is_retryable(
    vendor_api: respx.MockRouter, make_backend: MakeBackend, vendor: str
) -> None:
    vendor_api.route().mock(side_effect=httpx.ConnectTimeout("too slow"))
    with pytest.raises(VendorUnreachable) as caught:
        await make_backend(VENDOR_SPECS[vendor]).generate(ImageRequest(prompt="a cat"), Deadline(5))
    assert caught.value.retryable


@pytest.mark.parametrize("vendor", [vendor for vendor in ALL_VENDORS if not VENDOR_SPECS[vendor].idempotency_header])
async def test_a_create_timing_out_after_it_was_sent_is_ambiguous_and_never_retried_there(
    vendor_api: respx.MockRouter, make_backend: MakeBackend, vendor: str
) -> None:
    vendor_api.route().mock(side_effect=httpx.ReadTimeout("too slow"))
    with pytest.raises(AmbiguousCreate) as caught:
        await make_backend(VENDOR_SPECS[vendor]).generate(ImageRequest(prompt="a cat"), Deadline(5))
    assert not caught.value.retryable and caught.value.failover and caught.value.billed
    assert isinstance(caught.value.__cause__, VendorTimeout)


async def test_a_create_timing_out_at_a_vendor_honouring_idempotency_keys_is_retryable(
    vendor_api: respx.MockRouter, make_backend: MakeBackend
) -> None:
    vendor_api.route().mock(side_effect=httpx.ReadTimeout("too slow"))
    with pytest.raises(VendorTimeout) as caught:
        await make_backend(VENDOR_SPECS["callmissed"]).generate(ImageRequest(prompt="a cat"), Deadline(5))
    assert caught.value.retryable


@pytest.mark.parametrize("vendor", ALL_VENDORS)
def test_every_vendor_is_a_backend(vendor: str) -> None:
    backend = VendorBackend(VENDOR_SPECS[vendor], region="r1", base_url="https://x.test/", api_key=None)
    assert isinstance(backend, Backend)
    assert (backend.vendor, backend.region, backend.base_url) == (vendor, "r1", "https://x.test")
    assert backend.capabilities is VENDOR_SPECS[vendor].capabilities


async def test_options_override_the_defaults(make_backend: MakeBackend) -> None:
    backend = make_backend(VENDOR_SPECS["runflow"], options={"model_path": "acme/x"})
    assert backend.options == {"model_path": "acme/x"}
    assert make_backend(VENDOR_SPECS["runflow"]).options == {"model_path": "bytedance/sd-xl-lightning"}


async def test_an_unreachable_output_url_after_a_billed_answer_fails_over_without_a_retry(
    vendor_api: respx.MockRouter, make_backend: MakeBackend
) -> None:
    vendor_api.post("/go").respond(200)
    vendor_api.get("https://cdn.test/1.png").mock(side_effect=httpx.ConnectError("refused"))
    backend = make_backend(fixed_answer(VendorOutput(image_urls=["https://cdn.test/1.png"])))
    with pytest.raises(UnusableOutput, match="output URL") as caught:
        await backend.generate(ImageRequest(prompt="a cat"), Deadline(5))
    assert caught.value.billed and not caught.value.retryable and caught.value.failover


async def test_an_output_url_that_is_not_an_image(vendor_api: respx.MockRouter, make_backend: MakeBackend) -> None:
    vendor_api.post("/go").respond(200)
    vendor_api.get("https://cdn.test/1.png").respond(200, content=b"<html>login</html>")
    backend = make_backend(fixed_answer(VendorOutput(image_urls=["https://cdn.test/1.png"])))
    with pytest.raises(UnusableOutput) as caught:
        await backend.generate(ImageRequest(prompt="a cat"), Deadline(5))
    assert caught.value.billed


async def test_an_answer_flagged_nsfw_is_content_filtered_and_billed(
    vendor_api: respx.MockRouter, make_backend: MakeBackend
) -> None:
    vendor_api.post("/go").respond(200)
    backend = make_backend(fixed_answer(VendorOutput(b64_images=["x"], flagged_nsfw=True, run_seconds=1.5)))
    with pytest.raises(ContentFiltered) as caught:
        await backend.generate(ImageRequest(prompt="a cat"), Deadline(5))
    assert caught.value.billed and caught.value.run_seconds == 1.5


async def test_an_answer_without_images_is_unusable(vendor_api: respx.MockRouter, make_backend: MakeBackend) -> None:
    vendor_api.post("/go").respond(200)
    with pytest.raises(UnusableOutput, match="without an image"):
        await make_backend(fixed_answer(VendorOutput())).generate(ImageRequest(prompt="a cat"), Deadline(5))


async def test_an_unreadable_success_answer_is_billed_and_not_retried(
    vendor_api: respx.MockRouter, make_backend: MakeBackend
) -> None:
    vendor_api.post("/v1/images/generations").respond(200, content=b'{"created": 1, "data": [{"b64_json": "iVB')
    with pytest.raises(UnusableOutput) as caught:
        await make_backend(VENDOR_SPECS["callmissed"]).generate(ImageRequest(prompt="a cat"), Deadline(5))
    assert caught.value.billed and not caught.value.retryable


@pytest.mark.parametrize("url", [
    "https://other.test/thing",  # another host
    "http://x.test/thing",  # our host, but in the clear
    "https://x.test:8443/thing",  # our host, another port
    "https://user:pw@x.test/thing",  # credentials
    "https://x.test.evil.test/thing",  # our name as a prefix of another
])
async def test_the_key_never_goes_to_another_origin(
    vendor_api: respx.MockRouter, make_backend: MakeBackend, url: str
) -> None:
    elsewhere = vendor_api.route().respond(204)
    with pytest.raises(UnsafeVendorUrl, match="refusing"):
        await make_backend(VENDOR_SPECS["worker"]).send(HttpCall("DELETE", url), Deadline(1))
    assert not elsewhere.called


async def test_an_absolute_url_on_the_routes_own_origin_is_allowed(
    vendor_api: respx.MockRouter, make_backend: MakeBackend, base_url: str
) -> None:
    same = vendor_api.delete(f"{base_url}/thing").respond(204)
    answer = await make_backend(VENDOR_SPECS["worker"]).send(HttpCall("DELETE", f"{base_url}/thing"), Deadline(1))
    assert answer.status == 204 and same.called


async def test_output_urls_are_fetched_without_the_key(
    vendor_api: respx.MockRouter, make_backend: MakeBackend, png: bytes
) -> None:
    vendor_api.post("/go").respond(200)
    image = vendor_api.get("https://cdn.test/1.png").respond(200, content=png)
    backend = make_backend(fixed_answer(VendorOutput(image_urls=["https://cdn.test/1.png"])), api_key="secret")
    await backend.generate(ImageRequest(prompt="a cat"), Deadline(5))
    assert "authorization" not in image.calls.last.request.headers


async def test_an_unchecked_send_returns_error_answers(vendor_api: respx.MockRouter, make_backend: MakeBackend) -> None:
    vendor_api.post("/cancel").respond(500, content=b"boom")
    answer = await make_backend(VENDOR_SPECS["worker"]).send(HttpCall("POST", "/cancel"), Deadline(1), check=False)
    assert (answer.status, answer.body) == (500, b"boom")


def test_an_unknown_auth_scheme_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="auth_scheme"):
        VendorBackend(VENDOR_SPECS["eachlabs"], region="r", base_url="https://x.test", api_key="k",
                      options={"auth_scheme": "basic"})
