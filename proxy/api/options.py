"""``OPTIONS`` answers that list every method of a path.

Litestar 2 builds the automatic ``OPTIONS`` handler of a path when the path's first handler is
registered and never updates it, so a path served by several handlers (``GET`` and ``POST
/v1/admin/keys``) answered ``Allow: OPTIONS, POST`` (litestar-org/litestar#4169, fixed only in
Litestar 3). For such paths boltgate registers its own ``OPTIONS`` handler, built from the
handlers themselves.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from litestar import Response, route
from litestar.handlers import HTTPRouteHandler
from litestar.status_codes import HTTP_204_NO_CONTENT


def options_handlers(handlers: Iterable[HTTPRouteHandler]) -> list[HTTPRouteHandler]:
    """An ``OPTIONS`` handler for every path that several handlers share."""
    methods: dict[str, set[str]] = defaultdict(set)
    handlers = list(handlers)
    for handler in handlers:
        for path in handler.paths:
            methods[path] |= set(handler.http_methods)
    shared = {path for path in methods if sum(path in handler.paths for handler in handlers) > 1}
    return [_options(path, methods[path] | {"OPTIONS"}) for path in sorted(shared)]


def _options(path: str, methods: set[str]) -> HTTPRouteHandler:
    allow = ", ".join(sorted(methods))

    def answer() -> Response[None]:
        return Response(content=None, status_code=HTTP_204_NO_CONTENT, headers={"allow": allow})

    return route(path, http_method=["OPTIONS"], include_in_schema=False, sync_to_thread=False,
                 name=f"options {path}")(answer)
