"""``boltgate serve``'s uvicorn configuration: forwarded headers are read only while they matter."""

from __future__ import annotations

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from proxy.serving.run import server_config
from proxy.settings import Settings


def test_without_a_public_base_url_a_trusted_proxys_scheme_still_makes_the_image_links() -> None:
    config = server_config(Settings(simulators="off"), "127.0.0.1", 0)
    config.load()

    assert isinstance(config.loaded_app, ProxyHeadersMiddleware)


def test_with_a_public_base_url_forwarded_headers_are_not_read() -> None:
    config = server_config(Settings(simulators="off", public_base_url="https://images.example"), "127.0.0.1", 0)
    config.load()

    assert not isinstance(config.loaded_app, ProxyHeadersMiddleware)
