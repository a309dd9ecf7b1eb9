"""A request chooses its routing policy or its vendor, within what its key allows."""

from __future__ import annotations

from core.errors import VendorAuthError
from tests.proxy.api.served_app import Client, Vendors, serving

KEYS = {
    "bg-free": {"name": "free"},
    "bg-narrow": {"name": "narrow", "routing": {"policies": ["priority"], "pin_routes": False}},
}


async def test_a_pinned_vendor_serves_the_request(client: Client, vendors: Vendors) -> None:
    response = await client.post("/v1/images/generations", json={"prompt": "a kite"},
                                 headers={"x-boltgate-route": "eachlabs"})

    assert response.status_code == 200
    assert (response.headers["x-boltgate-backend"], response.headers["x-boltgate-region"]) == ("eachlabs", "us")
    assert vendors.text_only.calls == []


async def test_a_pinned_vendor_that_cannot_serve_says_why_and_nothing_else_is_tried(
    client: Client, vendors: Vendors
) -> None:
    vendors.editor.script.append(VendorAuthError("bad key", status=401))
    await client.post("/v1/images/generations", json={"prompt": "a kite"}, headers={"x-boltgate-route": "eachlabs"})

    response = await client.post("/v1/images/generations", json={"prompt": "a kite"},
                                 headers={"x-boltgate-route": "eachlabs/us"})

    assert response.status_code == 503
    message = response.json()["error"]["message"]
    assert message.startswith("The route eachlabs/us you asked for cannot serve this request now")
    assert "eachlabs:us: quarantined (auth_error 401: bad key)" in message
    assert vendors.text_only.calls == []  # never failed over to another vendor
    assert int(response.headers["retry-after"]) > 200


async def test_a_pin_to_no_such_route_is_a_400_listing_the_routes(client: Client) -> None:
    response = await client.post("/v1/images/generations", json={"prompt": "a kite"},
                                 headers={"x-boltgate-route": "callmissed"})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "x-boltgate-route"
    assert "eachlabs/us, runflow/eu" in error["message"]


async def test_the_policy_comes_from_the_body_or_the_header_and_a_bad_one_is_a_400(vendors: Vendors) -> None:
    dear_runflow = {"vendor_prices": {"runflow": {"price_usd": "0.05"}}}
    async with serving(vendors.routes(), pricing=dear_runflow) as client:
        default = await client.post("/v1/images/generations", json={"prompt": "a kite"})
        in_body = await client.post("/v1/images/generations", json={"prompt": "a kite", "routing_policy": "cheapest"})
        in_header = await client.post("/v1/images/generations", json={"prompt": "a kite"},
                                      headers={"x-boltgate-routing-policy": "cheapest"})
        body_wins = await client.post("/v1/images/generations", json={"prompt": "a kite", "routing_policy": "priority"},
                                      headers={"x-boltgate-routing-policy": "cheapest"})
        wrong = await client.post("/v1/images/generations", json={"prompt": "a kite", "routing_policy": "random"})

    assert default.headers["x-boltgate-backend"] == "runflow"  # the gateway's policy: priority
    assert in_body.headers["x-boltgate-backend"] == in_header.headers["x-boltgate-backend"] == "eachlabs"
    assert body_wins.headers["x-boltgate-backend"] == "runflow"
    assert (wrong.status_code, wrong.json()["error"]["param"]) == (400, "routing_policy")


async def test_an_edit_may_pin_its_route_as_a_form_field_policy_too(client: Client) -> None:
    from tests.proxy.images.samples import encode

    response = await client.post("/v1/images/edits", data={"prompt": "a kite", "routing_policy": "fastest"},
                                 files={"image": ("in.png", encode("PNG"), "image/png")})

    assert response.status_code == 200, response.text


async def test_a_key_gets_only_the_choices_it_is_allowed(vendors: Vendors) -> None:
    async with serving(vendors.routes(), api_keys=KEYS) as client:
        free = await client.post("/v1/images/generations", json={"prompt": "a kite", "routing_policy": "fastest"},
                                 headers={"authorization": "Bearer bg-free", "x-boltgate-route": "runflow"})
        policy = await client.post("/v1/images/generations", json={"prompt": "a kite", "routing_policy": "fastest"},
                                   headers={"authorization": "Bearer bg-narrow"})
        pinned = await client.post("/v1/images/generations", json={"prompt": "a kite"},
                                   headers={"authorization": "Bearer bg-narrow", "x-boltgate-route": "runflow"})
        plain = await client.post("/v1/images/generations", json={"prompt": "a kite", "routing_policy": "priority"},
                                  headers={"authorization": "Bearer bg-narrow"})

    assert free.status_code == 200
    assert (policy.status_code, policy.json()["error"]["param"]) == (403, "routing_policy")
    assert (pinned.status_code, pinned.json()["error"]["param"]) == (403, "x-boltgate-route")
    assert plain.status_code == 200
