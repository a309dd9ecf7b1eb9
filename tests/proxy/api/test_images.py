"""``POST /v1/images/generations`` and ``/v1/images/edits``, and the downloads of their images."""

from __future__ import annotations

import base64
import io
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from litestar.testing import AsyncTestClient
from PIL import Image

from backends.base import Capabilities, sniff_format
from core.errors import StateUnavailable, VendorRejectedRequest, VendorUnavailable
from proxy.metrics import GATEWAY_LOSS_USD, labelled
from tests.proxy.api.served_app import Client, Vendors, app_over, hanging_up, serving
from tests.proxy.images.samples import encode
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to
from tests.proxy.test_gateway import forget_answers
from tests.state_clock import StateClock


async def test_a_generation_answers_urls_that_download_the_images(client: Client, vendors: Vendors) -> None:
    response = await client.post("/v1/images/generations", json={"prompt": "a kite", "n": 2, "seed": 11})

    assert response.status_code == 200
    body = response.json()
    assert body["seed"] == 11
    assert body["size"] == "1024x1024"
    assert body["output_format"] == "png"
    assert len(body["data"]) == 2
    for item in body["data"]:
        assert item["url"].startswith("http://testserver.local/v1/images/files/")
        assert item["revised_prompt"] == "a kite"
        download = await client.get(item["url"].removeprefix("http://testserver.local"))
        assert download.status_code == 200
        assert download.headers["content-type"] == "image/png"
        assert sniff_format(download.content[:16]) == "png"
    assert vendors.text_only.calls[0].n == 2


async def test_the_response_headers_say_how_it_was_served(client: Client) -> None:
    response = await client.post("/v1/images/generations", json={"prompt": "a kite", "seed": 5})

    assert response.headers["x-boltgate-backend"] == "runflow"
    assert response.headers["x-boltgate-region"] == "eu"
    assert response.headers["x-boltgate-attempts"] == "1"
    assert response.headers["x-boltgate-seed"] == "5"


async def test_a_failover_shows_in_the_headers(client: Client, vendors: Vendors) -> None:
    vendors.text_only.script.extend([VendorUnavailable("down", status=503)] * 3)

    response = await client.post("/v1/images/generations", json={"prompt": "a kite"})

    assert response.status_code == 200
    assert response.headers["x-boltgate-backend"] == "eachlabs"
    assert response.headers["x-boltgate-attempts"] == "4"
    assert response.headers["x-boltgate-seed"] == str(response.json()["seed"])


async def test_b64_json_answers_the_image_inline(client: Client) -> None:
    response = await client.post("/v1/images/generations",
                                 json={"prompt": "a kite", "response_format": "b64_json", "output_format": "webp"})

    assert response.status_code == 200
    item = response.json()["data"][0]
    assert "url" not in item
    assert sniff_format(base64.b64decode(item["b64_json"])[:16]) == "webp"


async def test_a_jpeg_download_has_the_jpeg_content_type(client: Client) -> None:
    response = await client.post("/v1/images/generations", json={"prompt": "a kite", "output_format": "jpeg"})
    url = response.json()["data"][0]["url"]

    download = await client.get(url)

    assert url.endswith(".jpeg")
    assert download.headers["content-type"] == "image/jpeg"
    assert sniff_format(download.content[:16]) == "jpeg"


async def test_an_unknown_image_is_a_404_in_the_openai_envelope(client: Client) -> None:
    response = await client.get("/v1/images/files/AAAAAAAAAAAAAAAAAAAAAAAA.png")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert response.json()["error"]["param"] == "name"


UNKNOWN_NAME = "AAAAAAAAAAAAAAAAAAAAAAAA.png"
"""Well formed: the shape of a name the gateway hands out, naming no image."""

NOT_A_NAME = {
    "too short": "AAAA.png",
    "another extension": "AAAAAAAAAAAAAAAAAAAAAAAA.gif",
    "no extension": "AAAAAAAAAAAAAAAAAAAAAAAA",
    "a trailing newline": f"{UNKNOWN_NAME}%0A",
    "a NUL byte": f"{UNKNOWN_NAME}%00",
    "very long": "A" * 5000 + ".png",
    "non-ASCII": "%C3%84" * 20 + ".png",
    "an encoded backslash traversal": "..%5C..%5Csecret.png",
    "dots and a name": "..AAAAAAAAAAAAAAAAAAAAAA.png",
}
"""One path segment, so the download route reads each as a name."""

TRAVERSALS = {
    "an encoded traversal": "..%2Fsecret.png",
    "dots encoded too": "%2E%2E%2Fsecret.png",
    "two levels": "..%2F..%2F..%2Fetc%2Fpasswd",
    "an encoded slash inside a name": "AAAAAAAA%2FAAAAAAAAAAAAAAAA.png",
    "an encoded backslash": "..%5Csecret.png",
    "a doubly encoded slash": "..%252Fsecret.png",
}


@pytest.mark.parametrize("name", NOT_A_NAME.values(), ids=NOT_A_NAME.keys())
async def test_a_malformed_image_name_is_answered_as_an_unknown_one(client: Client, name: str) -> None:
    unknown = await client.get(f"/v1/images/files/{UNKNOWN_NAME}")
    malformed = await client.get(f"/v1/images/files/{name}")

    assert malformed.status_code == unknown.status_code == 404
    assert malformed.json() == unknown.json()  # the same envelope and message: nothing of how names are checked
    assert malformed.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("path", TRAVERSALS.values(), ids=TRAVERSALS.keys())
async def test_a_path_out_of_the_image_directory_is_a_404_never_the_file(
        tmp_path: Path, vendors: Vendors, path: str) -> None:
    (tmp_path / "secret.png").write_bytes(b"the gateway's own file")  # what each path points at
    async with serving(vendors.routes(), image_store="directory", image_dir=tmp_path / "images") as client:
        response = await client.get(f"/v1/images/files/{path}")

    assert response.status_code == 404
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == "not_found"
    assert "gateway's own file" not in response.text and "regex" not in error["message"]


async def test_a_request_one_vendor_refuses_is_served_by_the_next(client: Client, vendors: Vendors) -> None:
    vendors.text_only.script.append(VendorRejectedRequest("steps must be <= 20", status=422))

    response = await client.post("/v1/images/generations", json={"prompt": "a kite"})

    assert response.status_code == 200
    assert len(vendors.editor.calls) == 1


async def test_a_request_every_vendor_refuses_is_the_clients_400(client: Client, vendors: Vendors) -> None:
    vendors.text_only.script.append(VendorRejectedRequest("prompt refused", status=422))
    vendors.editor.script.append(VendorRejectedRequest("prompt refused", status=400))

    response = await client.post("/v1/images/generations", json={"prompt": "a kite"})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "upstream_rejected_request"


async def test_when_every_route_fails_the_answer_is_503_listing_the_attempts() -> None:
    down = ScriptedBackend.playing("runflow", VendorUnavailable("down", status=503), region="eu")
    async with serving([route_to(down, max_attempts=1)]) as client:
        response = await client.post("/v1/images/generations", json={"prompt": "a kite"})

    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "no_backend_available"
    assert "runflow/eu: unavailable 503 (down)" in error["message"]


async def test_the_price_ceiling_header_applies_when_the_body_has_none(client: Client) -> None:
    response = await client.post("/v1/images/generations", json={"prompt": "a kite"},
                                 headers={"x-boltgate-max-price-usd": "0.0000001"})

    assert response.status_code == 402
    assert response.json()["error"]["code"] == "price_ceiling_exceeded"


async def test_a_request_refused_by_some_routes_and_unhealthy_on_the_rest_is_a_503() -> None:
    small = ScriptedBackend("runflow", "eu", capabilities=Capabilities(max_steps=8))
    down = ScriptedBackend.playing("eachlabs", VendorUnavailable("down", status=503), region="us")
    async with serving([route_to(small, priority=1), route_to(down, max_attempts=1, priority=2)]) as client:
        response = await client.post("/v1/images/generations", json={"prompt": "a kite", "steps": 20})

    assert response.status_code == 503
    assert "runflow:eu: steps 20 > 8" in response.json()["error"]["message"]


# --- edits ---------------------------------------------------------------------------------------


async def test_an_edit_reaches_an_image_to_image_route_with_the_image(client: Client, vendors: Vendors) -> None:
    png = encode("PNG", side=64)

    response = await client.post(
        "/v1/images/edits",
        files={"image": ("source.png", png, "image/png")},
        data={"prompt": "make it autumn", "strength": "0.4", "size": "512x512"},
    )

    assert response.status_code == 200, response.text
    assert response.headers["x-boltgate-backend"] == "eachlabs"
    assert vendors.text_only.calls == []
    (served,) = vendors.editor.calls
    assert served.init_image == png
    assert served.strength == 0.4
    assert served.size == "512x512"
    with Image.open(io.BytesIO((await client.get(response.json()["data"][0]["url"])).content)) as image:
        assert image.format == "PNG"


async def test_an_edit_without_an_image_is_a_400_naming_the_image(client: Client) -> None:
    response = await client.post("/v1/images/edits", files={"prompt": (None, "make it autumn")})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "image"


async def test_an_edit_with_a_mask_is_refused_naming_the_mask(client: Client, vendors: Vendors) -> None:
    response = await client.post("/v1/images/edits", files={"image": ("s.png", encode("PNG"), "image/png"),
                                                            "mask": ("m.png", encode("PNG"), "image/png")},
                                 data={"prompt": "make it autumn"})

    assert response.status_code == 400
    assert (response.json()["error"]["param"], response.json()["error"]["code"]) == ("mask", "unsupported_parameter")
    assert "inpainting" in response.json()["error"]["message"]
    assert vendors.editor.calls == []


async def test_an_edit_with_two_images_is_refused_not_cut_to_one(client: Client, vendors: Vendors) -> None:
    response = await client.post("/v1/images/edits", files=[("image[]", ("a.png", encode("PNG"), "image/png")),
                                                            ("image[]", ("b.png", encode("PNG", seed=2), "image/png"))],
                                 data={"prompt": "make it autumn"})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "image"
    assert vendors.editor.calls == []


async def test_an_edit_whose_image_is_text_is_a_400_naming_the_image(client: Client) -> None:
    response = await client.post("/v1/images/edits", files={"image": (None, "not a file"),
                                                            "prompt": (None, "make it autumn")})

    assert response.status_code == 400
    assert (response.json()["error"]["param"], response.json()["error"]["code"]) == ("image", "invalid_image_part")


async def test_output_compression_sets_the_encoder_quality(client: Client) -> None:
    sizes = {}
    for compression in (5, 95):
        response = await client.post("/v1/images/generations", json={
            "prompt": "a kite", "response_format": "b64_json", "output_format": "jpeg",
            "output_compression": compression})
        assert response.status_code == 200, response.text
        data = base64.b64decode(response.json()["data"][0]["b64_json"])
        assert sniff_format(data[:16]) == "jpeg"
        sizes[compression] = len(data)

    assert sizes[5] < sizes[95] / 2


async def test_an_edit_with_a_file_that_is_not_an_image_is_a_400_naming_the_image(client: Client) -> None:
    response = await client.post("/v1/images/edits", files={"image": ("notes.png", b"hello, world", "image/png")},
                                 data={"prompt": "make it autumn"})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "image"
    assert response.json()["error"]["code"] == "invalid_image_format"


async def test_an_edit_whose_media_type_is_written_in_capitals_is_served(client: Client, vendors: Vendors) -> None:
    """Media types are case-insensitive (RFC 9110, 8.3.1): ``Multipart/Form-Data`` is multipart."""
    form = httpx.Request("POST", "http://gateway/", data={"prompt": "make it autumn"},
                         files={"image": ("source.png", encode("PNG", side=64), "image/png")})
    body, content_type = form.read(), form.headers["content-type"]

    capitals = content_type.replace("multipart/form-data", "Multipart/Form-Data")
    response = await client.post("/v1/images/edits", content=body, headers={"content-type": capitals})

    assert response.status_code == 200, response.text
    assert len(vendors.editor.calls) == 1


def form_part(name: str, value: bytes, headers: bytes = b"") -> bytes:
    disposition = b'Content-Disposition: form-data; name="' + name.encode() + b'"\r\n'
    return b"--b\r\n" + disposition + headers + b"\r\n" + value + b"\r\n"


MULTIPART_B = {"content-type": "multipart/form-data; boundary=b"}


async def test_an_edit_whose_image_part_has_no_filename_is_a_400_saying_it_must_be_a_file(client: Client) -> None:
    body = form_part("prompt", b"make it autumn") + form_part("image", encode("PNG"), b"Content-Type: image/png\r\n")

    response = await client.post("/v1/images/edits", content=body + b"--b--\r\n", headers=MULTIPART_B)

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["param"], error["code"]) == ("image", "invalid_image_part")
    assert "'image' must be a file" in error["message"]


async def test_an_edit_with_more_parts_than_a_form_may_have_is_a_400_with_a_code(client: Client) -> None:
    body = b"".join(form_part(f"extra{i}", b"x") for i in range(1001)) + b"--b--\r\n"

    response = await client.post("/v1/images/edits", content=body, headers=MULTIPART_B)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_multipart"
    assert "1000 parts" in error["message"]


async def test_an_edit_with_a_huge_part_header_is_a_400_with_a_code(client: Client) -> None:
    body = form_part("prompt", b"make it autumn", b"X-Padding: " + b"a" * 10_000 + b"\r\n") + b"--b--\r\n"

    response = await client.post("/v1/images/edits", content=body, headers=MULTIPART_B)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_multipart"


async def test_an_edit_whose_multipart_body_is_malformed_is_a_400_with_a_code(client: Client) -> None:
    body = b'--b\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nmake it autumn'  # never closed

    response = await client.post("/v1/images/edits", content=body, headers=MULTIPART_B)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_multipart"


async def test_an_edit_without_a_multipart_boundary_is_a_400_naming_the_missing_boundary(client: Client) -> None:
    body = form_part("prompt", b"make it autumn") + b"--b--\r\n"

    response = await client.post("/v1/images/edits", content=body, headers={"content-type": "multipart/form-data"})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "multipart_boundary_missing"
    assert "boundary" in error["message"]


async def test_an_edit_sent_as_json_is_a_400_naming_the_image(client: Client) -> None:
    response = await client.post("/v1/images/edits", json={"prompt": "make it autumn"})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "image"


async def test_an_edit_that_no_route_could_ever_serve_is_a_400_naming_the_reason() -> None:
    text_only = ScriptedBackend("runflow", "eu")
    async with serving([route_to(text_only)]) as client:
        response = await client.post("/v1/images/edits", files={"image": ("s.png", encode("PNG"), "image/png")},
                                     data={"prompt": "make it autumn"})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unsupported_request"
    assert "runflow:eu: no image-to-image" in response.json()["error"]["message"]
    assert text_only.calls == []


async def test_the_image_lifetime_said_is_the_one_configured(vendors: Vendors) -> None:
    async with serving(vendors.routes(), image_ttl_s=90) as client:
        missing = await client.get("/v1/images/files/AAAAAAAAAAAAAAAAAAAAAAAA.png")
        made = await client.post("/v1/images/generations", json={"prompt": "a kite"})
        download = await client.get(made.json()["data"][0]["url"])

    assert "images live 90 seconds" in missing.json()["error"]["message"]
    assert download.headers["cache-control"] == "private, max-age=90"


async def test_image_urls_never_follow_an_arbitrary_host_header() -> None:
    async with serving([route_to(ScriptedBackend("runflow"))]) as client:
        response = await client.post("/v1/images/generations", json={"prompt": "a cat", "size": "256x256"},
                                     headers={"Host": "evil.example"})
    url = response.json()["data"][0]["url"]
    assert "evil.example" not in url
    assert url.startswith("http://testserver.local/v1/images/files/")  # where the connection went


async def test_image_urls_follow_an_allowed_host() -> None:
    async with serving([route_to(ScriptedBackend("runflow"))], allowed_hosts=["img.example:8443"]) as client:
        response = await client.post("/v1/images/generations", json={"prompt": "a cat", "size": "256x256"},
                                     headers={"Host": "img.example:8443"})
    assert response.json()["data"][0]["url"].startswith("http://img.example:8443/v1/images/files/")


async def test_a_client_that_hangs_up_mid_create_pays_nothing_and_the_vendors_estimate_is_booked_as_a_loss() -> None:
    vendor = ScriptedBackend.playing("aigateway", "hang")
    app = app_over([route_to(vendor)], api_keys={"bg-gone": {"name": "gone", "budget_credits": "10"}})
    inner = app.asgi_handler
    losses = labelled(GATEWAY_LOSS_USD, "aigateway")
    before = losses._value.get()

    app.asgi_handler = hanging_up(inner, lambda: bool(vendor.calls))  # once the vendor is making the image
    async with AsyncTestClient(app=app) as client:
        key = {"Authorization": "Bearer bg-gone"}
        gone = await client.post("/v1/images/generations", json={"prompt": "a kite", "size": "256x256"}, headers=key)
        app.asgi_handler = inner
        usage = (await client.get("/v1/usage", headers=key)).json()

    assert gone.status_code == 499 and vendor.cancelled == 1
    assert (Decimal(usage["spent_usd"]), Decimal(usage["reserved_usd"])) == (Decimal(0), Decimal(0))
    assert Decimal(str(losses._value.get() - before)).quantize(Decimal("0.000001")) == Decimal("0.000800")


async def test_a_retry_after_a_charged_answer_could_not_be_kept_is_a_409_and_is_charged_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Over HTTP: the store was down when the answer was to be remembered, the client got its
    image and retries with the same Idempotency-Key two minutes later: a 409 in OpenAI's envelope
    that the SDK does not retry, and the key's usage shows one charge."""
    clock = StateClock(monkeypatch)
    forget_answers(monkeypatch, StateUnavailable("the state store did not answer"))
    vendor = ScriptedBackend("aigateway")
    alice = {"Authorization": "Bearer bg-alice", "Idempotency-Key": "order-12"}
    async with serving([route_to(vendor)], api_keys={"bg-alice": {"name": "alice", "budget_credits": "100"}}) as client:
        first = await client.post("/v1/images/generations", json={"prompt": "a kite"}, headers=alice)
        clock.advance(120)
        retried = await client.post("/v1/images/generations", json={"prompt": "a kite"}, headers=alice)
        usage = (await client.get("/v1/usage", headers=alice)).json()

    assert first.status_code == 200, first.text
    assert retried.status_code == 409 and retried.headers["x-should-retry"] == "false"
    error = retried.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "idempotent_answer_unavailable",
                                                             "Idempotency-Key")
    assert len(vendor.calls) == 1
    assert Decimal(usage["spent_usd"]) == Decimal(first.json()["billing"]["cost_usd"]) > 0


async def test_an_image_kept_as_a_file_downloads_the_same_without_the_servers_sendfile(
        vendors: Vendors, tmp_path: Path) -> None:
    """The test client offers no ``one_write`` extension: the file is read and sent as bytes."""
    async with serving(vendors.routes(), image_store="directory", image_dir=tmp_path) as client:
        response = await client.post("/v1/images/generations", json={"prompt": "a kite"})
        url = response.json()["data"][0]["url"]
        name = url.rsplit("/", 1)[1]

        download = await client.get(url)

    assert download.status_code == 200
    assert download.headers["content-type"] == "image/png"
    assert download.content == (tmp_path / name).read_bytes()
    assert int(download.headers["content-length"]) == len(download.content)
