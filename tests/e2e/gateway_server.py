"""The real gateway app on a free loopback port."""

from __future__ import annotations

from proxy.api.app import create_app
from proxy.serving.config import uvicorn_config
from proxy.settings import Settings
from tests.asgi_server import AsgiServer


class GatewayServer(AsgiServer):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        config = uvicorn_config(self.app, settings.server, host="127.0.0.1", port=0, log_level="warning",
                                lifespan="on")
        super().__init__(self.app, name="gateway-under-test", config=config)

    @property
    def base_url(self) -> str:
        return self.url

    def start(self) -> GatewayServer:
        super().start()
        return self
