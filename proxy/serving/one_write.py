"""A whole sized answer written to the socket in one system call (``writelines``), head included.

uvicorn writes each ASGI message as it comes: the head, then each body part, one ``write`` and
one TCP packet each (the sockets send without delay). A 1.5 MB image answer on the lean path is
a head and three parts (the JSON before the base64, the vendor's base64 as a view, the JSON
after it): four system calls, and four wake-ups of a reader. Held and written together they are
one ``writev`` (uvloop's ``writelines``), nothing copied.

Opt-in, never for a stream: a handler that finds ``EXTENSION`` in ``scope["extensions"]`` may
send ``http.response.start`` with the whole body as ``PARTS`` (a list of buffers, the
``content-length`` header already counting them). The last part may be a ``FilePart``: the
bytes before it go out in one write, then it is sent from its file (``proxy.serving.file_part``).
The messages uvicorn would have been sent go through its own ``send`` (its header checks, length
accounting, keep-alive, the response's end), against a transport that only collects what is
written; the collected writes then go to the socket at once.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from proxy.serving.file_part import FilePart, send_file

EXTENSION = "boltgate.one_write"
"""In ``scope["extensions"]`` when the server takes ``PARTS`` (served by ``boltgate serve``)."""
PARTS = "boltgate.parts"
"""The key of ``http.response.start`` that carries the whole body, as a list of buffers."""

Send = Callable[[dict[str, Any]], Awaitable[None]]


class _Collecting:
    """What uvicorn's cycle writes through while one answer is assembled: its writes kept (by
    reference), a close put off until they are written."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.written: list[Any] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing or self.transport.is_closing()


def one_write(cycle: RequestResponseCycle) -> None:
    """``cycle`` taking ``PARTS`` on its start message (its ``send`` wrapped; set before its task
    first runs, which looks ``send`` up then).

    The wrapper holds the cycle weakly (its task holds it while it sends): stored on the cycle, a
    wrapper closing over the cycle made a reference cycle of every request, its scope, headers and
    events with it, which only the garbage collector freed. Measured on the gateway before this
    (``gc.callbacks`` under ``bench/overhead.py``'s load): about 37 such objects per request, and
    collections of 43,000 objects taking 25-40 ms each, some 20-28 us of CPU per request."""
    owner = weakref.ref(cycle)
    send_on = type(cycle).send  # the function: a bound method would hold the cycle

    async def sending(message: dict[str, Any]) -> None:
        cycle = owner()
        assert cycle is not None  # its task, which calls this, holds it
        parts: Sequence[Any] | None = message.get(PARTS)
        if parts is None or message["type"] != "http.response.start":
            await send_on(cycle, message)  # type: ignore[arg-type]
            return
        transport = cycle.transport
        collecting = _Collecting(transport)
        cycle.transport = collecting  # type: ignore[assignment]
        try:
            await send_on(cycle, {name: value for name, value in message.items() if name != PARTS})  # type: ignore[arg-type]
            last = len(parts) - 1
            for index, part in enumerate(parts or [b""]):
                await send_on(cycle, {"type": "http.response.body", "body": part, "more_body": index < last})
        finally:
            cycle.transport = transport
        written = collecting.written
        if written and not cycle.disconnected:
            if isinstance(written[-1], FilePart):  # not for HEAD: uvicorn writes no body then
                transport.writelines(written[:-1])
                await send_file(transport, cycle.flow, written[-1])
            else:
                transport.writelines(written)
        if collecting.closing:
            transport.close()

    cycle.send = sending  # type: ignore[method-assign, assignment]
