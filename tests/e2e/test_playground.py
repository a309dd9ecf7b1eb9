"""The playground in a real browser: Debian's Chromium, driven by Playwright, against the real
gateway over HTTP on loopback, serving from vendor simulators.

One browser for the module, a fresh context (no storage) per test. The gateway over two
simulators is shared too: a test that injects a fault uses it up (``times=1``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from backends.simulators import Fault, SimulatorConfig, SimulatorServer
from proxy.settings import Settings
from tests.e2e.browser import chromium
from tests.e2e.conftest import KEY_ENV, SIM_KEY, route_to
from tests.e2e.gateway_server import GatewayServer

pytestmark = pytest.mark.e2e

FAST_RETRY = {"backoff_initial_s": 0.05, "backoff_max_s": 0.2, "jitter_s": 0.05}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
GENERATE_TIMEOUT_MS = 30_000
USD = re.compile(r"^\$\d+\.\d{6}$")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as started:
        yield started


@pytest.fixture(scope="module")
def simulators() -> Iterator[tuple[SimulatorServer, SimulatorServer]]:
    """callmissed first (priority 10), aigateway second: both take a steps field."""
    first = SimulatorServer("callmissed", SimulatorConfig(api_key=SIM_KEY)).start()
    second = SimulatorServer("aigateway", SimulatorConfig(api_key=SIM_KEY)).start()
    yield first, second
    first.stop()
    second.stop()


def start_gateway(**settings: object) -> GatewayServer:
    settings = {"state_backend": "memory", "retry": FAST_RETRY, **settings}
    return GatewayServer(Settings(**settings)).start()  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def two_vendors(simulators: tuple[SimulatorServer, SimulatorServer]) -> Iterator[GatewayServer]:
    first, second = simulators
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv(KEY_ENV, SIM_KEY)
        server = start_gateway(routes=[route_to(first, priority=10, max_attempts=1), route_to(second, priority=20)],
                               simulators="off")
    yield server
    server.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(GENERATE_TIMEOUT_MS)
    yield opened
    context.close()


def generate(page: Page, prompt: str, size: str = "512x512") -> None:
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_label("Size").select_option(size)
    page.get_by_role("button", name="Generate").click()


def fact(page: Page, name: str, index: int = 0) -> str:
    return page.locator(f'[data-testid="result"] dd[data-fact="{name}"]').nth(index).inner_text()


def image_loaded(page: Page, selector: str) -> bool:
    return bool(page.locator(selector).first.evaluate("image => image.complete && image.naturalWidth > 0"))


def test_the_embedded_default_generates_an_image_with_its_vendor_and_price(page: Page, tmp_path: Path) -> None:
    """`make run`'s gateway (the five simulators, no configuration) serves the page at once; the
    vendor and price shown are the ones the gateway answered with."""
    server = start_gateway()  # simulators "auto": no route is configured
    try:
        page.goto(server.base_url + "/")
        expect(page).to_have_title("boltgate playground")
        with page.expect_response("**/v1/images/generations") as answered:
            generate(page, "a lighthouse at dawn, oil painting")
        response = answered.value
        assert response.status == 200
        expect(page.locator('[data-testid="result"] img')).to_have_count(1)
        assert image_loaded(page, '[data-testid="result"] img')

        headers = response.headers
        assert fact(page, "vendor") == headers["x-boltgate-backend"]
        assert fact(page, "region") == headers["x-boltgate-region"] == "sim"
        assert USD.match(fact(page, "price"))
        assert float(fact(page, "price")[1:]) == pytest.approx(float(headers["x-boltgate-cost-usd"]))
        assert fact(page, "attempts") == "1"
        assert fact(page, "failover").startswith("none")
        assert re.match(r"^\d+\.\d\d s", fact(page, "latency"))
        expect(page.get_by_role("status")).to_contain_text(  # what a screen reader hears
            f"1 image from {headers['x-boltgate-backend']}/sim, {fact(page, 'price')}, ")

        gallery = page.locator('[data-testid="gallery-item"]')
        expect(gallery).to_have_count(1)
        with page.expect_download() as downloading:
            gallery.get_by_role("link", name="Download").click()
        saved = tmp_path / downloading.value.suggested_filename
        downloading.value.save_as(saved)
        assert saved.read_bytes().startswith(PNG_MAGIC)

        screenshot = tmp_path / "playground.png"
        page.screenshot(path=str(screenshot), full_page=True)
        assert screenshot.read_bytes().startswith(PNG_MAGIC)
    finally:
        server.stop()


def test_the_first_vendor_failing_shows_the_failover(
    page: Page, two_vendors: GatewayServer, simulators: tuple[SimulatorServer, SimulatorServer]
) -> None:
    first, _ = simulators
    first.inject(Fault(kind="status", status=503, times=1, method="POST"))  # not a health probe
    page.goto(two_vendors.base_url + "/")
    expect(page.locator("#status-strip [data-route]")).to_have_count(2)

    generate(page, "a storm over the harbour")

    expect(page.locator('[data-testid="result"] img')).to_have_count(1)
    assert fact(page, "vendor") == "aigateway"
    assert fact(page, "attempts") == "2"
    assert fact(page, "failover") == "failed over from callmissed/r1 unavailable 503"
    expect(page.get_by_role("status")).to_contain_text("after 2 attempts")


def test_the_page_is_usable_with_the_keyboard_alone(page: Page, two_vendors: GatewayServer) -> None:
    """Tab reaches every control in reading order with a visible focus ring; Enter on Generate
    generates; the result's download link is reachable next."""
    page.goto(two_vendors.base_url + "/")
    unlabelled = page.evaluate("""[...document.querySelectorAll('input, select, textarea, button')]
        .filter(control => control.labels ? control.labels.length === 0 && !control.textContent.trim()
                                           : !control.textContent.trim())
        .map(control => control.id)""")
    assert unlabelled == []
    visited: list[str] = []
    for _ in range(30):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.id || document.activeElement.tagName")
        visited.append(focused)
        if focused == "prompt":
            page.keyboard.type("a fox in the snow")
        if focused == "size":
            page.keyboard.press("ArrowUp")  # 768x768, then 512x512: smaller images, faster test
            page.keyboard.press("ArrowUp")
        if focused == "generate-button":
            outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
            assert outline not in ("", "none"), "the focused button shows no focus ring"
            break
    controls = ["prompt", "negative-prompt", "size", "count", "steps", "seed", "generate-button"]
    assert [name for name in visited if name in controls] == controls, visited

    page.keyboard.press("Enter")
    expect(page.locator('[data-testid="result"] img')).to_have_count(1)
    assert page.get_by_label("Size").input_value() == "512x512"
    assert page.locator('[data-testid="result"] .prompt').inner_text() == "a fox in the snow"
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('download')"):
            break
    else:
        pytest.fail("Tab never reached the result's download link")


def test_a_prompt_with_markup_stays_inert_text(page: Page, two_vendors: GatewayServer) -> None:
    prompt = ('<script>window.__pwned = "script"</script>'
              '<img src="x" onerror="window.__pwned = \'img\'"> & "quotes"')
    answer = page.goto(two_vendors.base_url + "/")
    assert answer is not None
    assert "script-src 'self'" in answer.headers["content-security-policy"]

    generate(page, prompt)

    expect(page.locator('[data-testid="result"] img')).to_have_count(1)
    assert page.locator('[data-testid="result"] .prompt').inner_text() == prompt
    assert page.locator('[data-testid="gallery-item"] .thumb-prompt').inner_text() == prompt
    assert page.evaluate("window.__pwned") is None
    assert page.locator('img[src="x"]').count() == 0
    assert page.locator("body script").count() == 0


def test_phone_width_has_no_horizontal_scroll(browser: Browser, two_vendors: GatewayServer, tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        page.set_default_timeout(GENERATE_TIMEOUT_MS)
        page.goto(two_vendors.base_url + "/")
        generate(page, "a very long prompt " + "withaverylongwordthatdoesnotbreak" * 4)
        expect(page.locator('[data-testid="result"] img')).to_have_count(1)
        expect(page.locator('[data-testid="gallery-item"]')).to_have_count(1)
        widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert widths[0] <= widths[1] == 375, widths
        page.screenshot(path=str(tmp_path / "playground-375px.png"), full_page=True)
        assert (tmp_path / "playground-375px.png").read_bytes().startswith(PNG_MAGIC)
    finally:
        context.close()


def test_a_gateway_with_keys_asks_for_one_and_keeps_it_in_the_tab_only(
    page: Page, simulators: tuple[SimulatorServer, SimulatorServer]
) -> None:
    _, second = simulators
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv(KEY_ENV, SIM_KEY)
        server = start_gateway(routes=[route_to(second)], simulators="off",
                               api_keys={"bg-playground-key": {"name": "playground"}})
    try:
        dialog = page.get_by_role("dialog", name="API key")
        page.goto(server.base_url + "/")
        expect(page.locator("#status-strip")).to_have_attribute("aria-busy", "false")
        if httpx.get(server.base_url + "/v1/backends").status_code == 401:  # route health wants a key
            expect(dialog).to_be_visible()  # asked at once; declined here, asked again below
            page.keyboard.press("Escape")
            expect(dialog).to_be_hidden()
            expect(page.get_by_label("Prompt", exact=True)).to_be_focused()
        generate(page, "a key-guarded image")
        expect(dialog).to_be_visible()
        expect(dialog.get_by_label(re.compile("^Key"))).to_be_focused()
        page.keyboard.type("bg-wrong")
        page.keyboard.press("Enter")
        expect(page.get_by_role("alert")).to_contain_text("Incorrect or revoked API key")

        page.get_by_role("button", name="Generate").click()
        expect(dialog).to_be_visible()
        dialog.get_by_label(re.compile("^Key")).fill("bg-playground-key")
        with page.expect_request("**/v1/images/generations") as sent:
            dialog.get_by_role("button", name="Use this key").click()
        assert sent.value.headers["authorization"] == "Bearer bg-playground-key"
        expect(page.locator('[data-testid="result"] img')).to_have_count(1)
        assert page.evaluate("sessionStorage.getItem('boltgate.apiKey')") == "bg-playground-key"
        assert page.evaluate("Object.keys(localStorage)") == []
    finally:
        server.stop()


def test_results_are_kept_in_the_gallery_across_reloads_until_cleared(page: Page, two_vendors: GatewayServer) -> None:
    page.goto(two_vendors.base_url + "/")
    page.get_by_label("Images").select_option("2")
    generate(page, "first picture")
    expect(page.locator('[data-testid="result"] img')).to_have_count(2)
    price = fact(page, "price", 1)
    assert re.fullmatch(r"\$\d+\.\d{6} \(of \$\d+\.\d{6} for 2 images\)", price), price
    page.get_by_label("Images").select_option("1")
    generate(page, "second picture")
    expect(page.locator('[data-testid="result"] .prompt')).to_have_text(["second picture"])
    items = page.locator('[data-testid="gallery-item"]')
    expect(items).to_have_count(3)  # the results are shown first, then stored: wait for the store

    page.reload()
    expect(items).to_have_count(3)
    expect(items.first.locator(".thumb-prompt")).to_have_text("second picture")  # newest first
    with page.expect_download() as downloading:
        items.first.get_by_role("link", name="Download").click()
    saved = downloading.value.path()
    assert saved.read_bytes().startswith(PNG_MAGIC)  # the image itself, kept in this browser
    assert downloading.value.suggested_filename.endswith(".png")

    page.get_by_role("button", name="Clear gallery").click()
    expect(items).to_have_count(0)
    page.reload()
    expect(page.locator(".thumbs .empty")).to_be_visible()


def test_the_strip_shows_each_routes_health_and_a_pinned_vendor_serves(
    page: Page, two_vendors: GatewayServer
) -> None:
    """Route health from ``GET /v1/backends``; a pin goes as ``x-boltgate-route``, a policy as
    ``x-boltgate-routing-policy``, and the pinned vendor serves although another comes first."""
    page.goto(two_vendors.base_url + "/")
    for route in ("callmissed/r1", "aigateway/r1"):
        chip = page.locator(f'#status-strip [data-route="{route}"]')
        expect(chip.locator(".route-state")).to_have_text("healthy")
        expect(chip.locator(".route-details")).to_contain_text("/image")  # its price

    page.get_by_label("Routing").select_option(label="Only aigateway")
    with page.expect_request("**/v1/images/generations") as sent:
        generate(page, "pinned to the second vendor")
    assert sent.value.headers["x-boltgate-route"] == "aigateway"
    assert "x-boltgate-routing-policy" not in sent.value.headers
    expect(page.locator('[data-testid="result"] .prompt')).to_have_text(["pinned to the second vendor"])
    assert fact(page, "vendor") == "aigateway"

    page.get_by_label("Routing").select_option(label="Policy: cheapest")
    with page.expect_request("**/v1/images/generations") as sent:
        generate(page, "the cheapest route")
    assert sent.value.headers["x-boltgate-routing-policy"] == "cheapest"
    assert "x-boltgate-route" not in sent.value.headers
    expect(page.locator('[data-testid="result"] .prompt')).to_have_text(["the cheapest route"])
    assert fact(page, "vendor") == "aigateway"  # $0.00108 an image against callmissed's $0.054
