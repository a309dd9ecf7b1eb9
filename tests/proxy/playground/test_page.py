"""The playground's files: served by exact name from the package, each with the safe headers."""

from __future__ import annotations

import re

import pytest

from proxy.playground.page import CONTENT_SECURITY_POLICY, STATIC
from proxy.routing.route import Route
from tests.proxy.api.served_app import serving
from tests.proxy.routing.scripted_backend import ScriptedBackend, route_to


@pytest.fixture
def routes() -> list[Route]:
    return [route_to(ScriptedBackend("runflow"))]


async def test_the_page_is_served_at_the_root_with_a_content_security_policy(routes: list[Route]) -> None:
    async with serving(routes) as client:
        response = await client.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>boltgate playground</title>" in response.text
    policy = response.headers["content-security-policy"]
    assert policy == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_every_file_the_page_names_is_served_with_its_type(routes: list[Route]) -> None:
    page = STATIC["index.html"].decode()
    named = re.findall(r'(?:src|href)="/playground/([^"]+)"', page)
    imported = [name for script in STATIC if script.endswith(".js")
                for name in re.findall(r'from "\./([^"]+)"', STATIC[script].decode())]
    assert {"main.js", "playground.css"} <= set(named)
    async with serving(routes) as client:
        for name in {*named, *imported}:
            response = await client.get(f"/playground/{name}")
            assert response.status_code == 200, name
            assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
            kind = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8",
                    "svg": "image/svg+xml"}[name.rsplit(".", 1)[1]]
            assert response.headers["content-type"] == kind, name


@pytest.mark.parametrize("path", ["/playground/nothing.js", "/playground/..%2Fpage.py", "/playground/%2e%2e%2fpage.py",
                                  "/playground/__init__.py", "/playground/"])
async def test_only_the_shipped_files_are_served(routes: list[Route], path: str) -> None:
    async with serving(routes) as client:
        response = await client.get(path)

    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "def " not in response.text


async def test_the_scripts_never_parse_strings_as_html() -> None:
    """Prompts and vendor messages are text: no script writes HTML from a string."""
    for name, content in STATIC.items():
        if name.endswith(".js"):
            code = content.decode()
            for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
                assert sink not in code, f"{name} uses {sink}"


async def test_the_playground_can_be_turned_off(routes: list[Route]) -> None:
    async with serving(routes, playground=False) as client:
        page = await client.get("/")
        script = await client.get("/playground/main.js")
        api = await client.get("/v1/models")

    assert page.status_code == script.status_code == 404
    assert api.status_code == 200
