"""The test harness's server fails the test when it does not stop, instead of being left running."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from tests import asgi_server
from tests.asgi_server import AsgiServer, ServerDidNotStop


def app_whose_shutdown_hangs_until(released: threading.Event, shutting_down: threading.Event | None = None) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                if shutting_down is not None:
                    shutting_down.set()
                await asyncio.to_thread(released.wait)  # a closer that waits on a hung dependency
                await send({"type": "lifespan.shutdown.complete"})
                return

    return app


def suspended_in_the_loop(server: AsgiServer) -> None:
    """Return once the server's loop has run a callback sent now: the task that was running (the
    lifespan, between setting ``shutting_down`` and awaiting ``to_thread``) has yielded.

    Without it the stop could read the task's coroutines mid-step, before it awaits anything (a
    loaded machine may not run the server's thread for longer than the stop waits), and find no
    ``to_thread`` in the chain."""
    assert server._loop is not None
    reached = threading.Event()
    server._loop.call_soon_threadsafe(reached.set)
    assert reached.wait(timeout=60), "the server's loop never ran"


def test_a_server_whose_shutdown_hangs_fails_the_stop_naming_what_it_awaits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(asgi_server, "STOP_WAIT_S", 0.2)
    released, shutting_down = threading.Event(), threading.Event()
    server = AsgiServer(app_whose_shutdown_hangs_until(released, shutting_down), name="hangs-on-shutdown").start()
    try:
        server.server.should_exit = True
        shutting_down.wait()  # the lifespan's shutdown has begun...
        suspended_in_the_loop(server)  # ... and its task has reached the wait it hangs in
        with pytest.raises(ServerDidNotStop, match="hangs-on-shutdown did not stop") as stopped:
            server.stop()
        assert "test_asgi_server.py" in str(stopped.value)  # where the lifespan waits
        assert "to_thread" in str(stopped.value)
    finally:
        released.set()
        server._thread.join()
    assert not server._thread.is_alive()


def test_a_server_that_stops_stops_quietly() -> None:
    released = threading.Event()
    released.set()
    server = AsgiServer(app_whose_shutdown_hangs_until(released)).start()
    server.stop()
    assert not server._thread.is_alive()
