"""An answer whose body is an open image file, sent from the file where the server can.

Served by ``boltgate serve`` (``proxy.serving.one_write`` in the scope's extensions), the body
goes out as a ``FilePart``: ``sendfile(2)`` from the file to the socket, the image never read
into the process. Elsewhere (a test client, another ASGI server) the file is read in a worker
thread and sent as ordinary bytes. Either way the file is closed once the answer is sent. A
``HEAD`` answer is the same head (its ``content-length`` the file's size) and no body: the file
is closed unread.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from litestar import Request, Response
from litestar.response.base import ASGIResponse
from litestar.types import Message, Receive, Scope, Send

from proxy.images.store import ImageFile
from proxy.serving.file_part import FilePart
from proxy.serving.one_write import EXTENSION as ONE_WRITE
from proxy.serving.one_write import PARTS


class FileAnswer(Response[bytes]):
    """``image`` as the answer's body, with ``media_type`` and ``headers`` (its length added)."""

    def __init__(self, image: ImageFile, *, media_type: str, headers: dict[str, str]) -> None:
        super().__init__(content=b"", media_type=media_type, headers=headers)
        self.image = image

    def to_asgi_response(self, app: Any, request: Request[Any, Any, Any], **_: Any) -> ASGIResponse:
        return _FileASGIResponse(self.image, media_type=str(self.media_type), headers=self.headers)


class _FileASGIResponse(ASGIResponse):
    __slots__ = ("image",)

    def __init__(self, image: ImageFile, *, media_type: str, headers: dict[str, Any]) -> None:
        super().__init__(media_type=media_type, headers=headers, content_length=image.size)
        self.image = image

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            if scope.get("method") == "HEAD":  # the head GET would send, the file closed unread
                await self.start_response(send)
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            if ONE_WRITE in (scope.get("extensions") or {}):
                await send(cast(Message, {"type": "http.response.start", "status": self.status_code,
                                          "headers": self.encode_headers(),
                                          PARTS: [FilePart(self.image.fd, 0, self.image.size)]}))
                return
            body = await asyncio.to_thread(self.image.read)
            await self.start_response(send)
            await send({"type": "http.response.body", "body": body, "more_body": False})
        finally:
            self.image.close()
