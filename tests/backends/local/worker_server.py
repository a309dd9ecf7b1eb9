"""The worker app on a real loopback port (see ``tests.asgi_server``)."""

from tests.asgi_server import AsgiServer as WorkerServer

__all__ = ["WorkerServer"]
