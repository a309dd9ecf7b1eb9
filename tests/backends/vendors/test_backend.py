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
from backends.vendors.spec import VendorSpec
from core.deadline import Deadline
from core.errors import ContentFiltered, UnsafeVendorUrl, VendorProtocolError, VendorTimeout, VendorUnavailable
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
@pytest.mark.parametrize("timeout", [httpx.ConnectTimeout, httpx.ReadTimeout])
async def test_a_timeout_is_a_vendor_timeout(
    vendor_api: respx.MockRouter, make_backend: MakeBackend, vendor: str, timeout: type[Exception]
) -> None:
    vendor_api.route().mock(side_effect=timeout("too slow"))
    with pytest.raises(VendorTimeout):
        await make_backend(VENDOR_SPECS[vendor]).generate(ImageRequest(prompt="a cat"), Deadline(5))


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


async def test_an_unreachable_output_url_is_unavailable(
    vendor_api: respx.MockRouter, make_backend: MakeBackend
) -> None:
    vendor_api.post("/go").respond(200)
    vendor_api.get("https://cdn.test/1.png").mock(side_effect=httpx.ConnectError("refused"))
    backend = make_backend(fixed_answer(VendorOutput(image_urls=["https://cdn.test/1.png"])))
    with pytest.raises(VendorUnavailable, match="output URL"):
        await backend.generate(ImageRequest(prompt="a cat"), Deadline(5))


async def test_an_output_url_that_is_not_an_image(vendor_api: respx.MockRouter, make_backend: MakeBackend) -> None:
    vendor_api.post("/go").respond(200)
    vendor_api.get("https://cdn.test/1.png").respond(200, content=b"<html>login</html>")
    backend = make_backend(fixed_answer(VendorOutput(image_urls=["https://cdn.test/1.png"])))
    with pytest.raises(VendorProtocolError):
        await backend.generate(ImageRequest(prompt="a cat"), Deadline(5))


async def test_an_answer_flagged_nsfw_is_content_filtered(
    vendor_api: respx.MockRouter, make_backend: MakeBackend
) -> None:
    vendor_api.post("/go").respond(200)
    backend = make_backend(fixed_answer(VendorOutput(b64_images=["x"], flagged_nsfw=True)))
    with pytest.raises(ContentFiltered):
        await backend.generate(ImageRequest(prompt="a cat"), Deadline(5))


async def test_an_answer_without_images_is_a_protocol_error(
    vendor_api: respx.MockRouter, make_backend: MakeBackend
) -> None:
    vendor_api.post("/go").respond(200)
    with pytest.raises(VendorProtocolError, match="without an image"):
        await make_backend(fixed_answer(VendorOutput())).generate(ImageRequest(prompt="a cat"), Deadline(5))


async def test_an_absolute_url_on_the_routes_origin_goes_where_it_says(
    vendor_api: respx.MockRouter, make_backend: MakeBackend
) -> None:
    there = vendor_api.delete("https://x.test/v2/thing").respond(204)
    answer = await make_backend(VENDOR_SPECS["worker"]).send(HttpCall("DELETE", "https://x.test/v2/thing"), Deadline(1))
    assert answer.status == 204 and there.called


@pytest.mark.parametrize("url", [
    "https://other.test/thing",  # another host
    "http://x.test/thing",  # our host, but in the clear
    "https://x.test:8443/thing",  # our host, another port
    "https://user:pw@x.test/thing",  # credentials
    "https://x.test.evil.test/thing",
])
async def test_an_absolute_url_off_the_routes_origin_is_never_called_with_our_key(
    vendor_api: respx.MockRouter, make_backend: MakeBackend, url: str
) -> None:
    elsewhere = vendor_api.route().respond(204)
    with pytest.raises(UnsafeVendorUrl, match="off its own origin"):
        await make_backend(VENDOR_SPECS["worker"]).send(HttpCall("DELETE", url), Deadline(1))
    assert not elsewhere.called


async def test_an_unchecked_send_returns_error_answers(vendor_api: respx.MockRouter, make_backend: MakeBackend) -> None:
    vendor_api.post("/cancel").respond(500, content=b"boom")
    answer = await make_backend(VENDOR_SPECS["worker"]).send(HttpCall("POST", "/cancel"), Deadline(1), check=False)
    assert (answer.status, answer.body) == (500, b"boom")
