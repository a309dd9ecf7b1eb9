"""The real gateway app on a free loopback port."""

from __future__ import annotations

from proxy.api.app import create_app
from proxy.settings import Settings
from tests.asgi_server import AsgiServer


class GatewayServer(AsgiServer):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        super().__init__(self.app, name="gateway-under-test")

    @property
    def base_url(self) -> str:
        return self.url

    def start(self) -> GatewayServer:
        super().start()
        return self
