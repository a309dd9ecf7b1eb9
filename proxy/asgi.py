"""The ASGI application built from the environment, for ASGI servers run by hand
(``granian --interface asgi proxy.asgi:app``, ``uvicorn proxy.asgi:app``)."""

from proxy.api.app import create_app

app = create_app()
