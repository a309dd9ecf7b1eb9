"""Where clients are told to download their images: never wherever a ``Host`` header says.

An image URL built from the client's ``Host`` header lets anyone who can reach the gateway (or
poison a cache in front of it) hand other clients links to a host of their choosing. The base of
every image URL is therefore, in order:

1. ``public_base_url`` when it is set (what a deployment behind a load balancer should set);
2. the request's scheme and ``Host`` when that host is in ``allowed_hosts`` (``localhost`` and
   the loopback addresses by default, so a local ``make run`` links to what the browser typed);
3. otherwise the address the client's connection actually reached (the server socket's own
   address and port), which no header can change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

VERDICTS_KEPT = 256
"""Host headers whose verdict is remembered: a deployment sees a handful, and a client sending a
new one on every request only ever empties the memory, never grows it."""


def _host_and_port(authority: str) -> tuple[str, int | None] | None:
    try:
        parts = urlsplit(f"//{authority}")
        return (parts.hostname or "").lower(), parts.port
    except ValueError:
        return None


class ImageLinks:
    def __init__(self, public_base_url: str | None, allowed_hosts: Sequence[str]) -> None:
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self._allowed = [parsed for entry in allowed_hosts if (parsed := _host_and_port(entry))]
        self._verdicts: dict[str, bool] = {}

    def allows(self, host_header: str) -> bool:
        """Whether ``host_header`` names an allowed host. Remembered per header: every request
        asks, with the few headers its deployment sees, and parsing one cost 12 us (issue 17)."""
        verdict = self._verdicts.get(host_header)
        if verdict is None:
            if len(self._verdicts) >= VERDICTS_KEPT:
                self._verdicts.clear()
            verdict = self._verdicts[host_header] = self._judge(host_header)
        return verdict

    def _judge(self, host_header: str) -> bool:
        parsed = _host_and_port(host_header)
        if parsed is None or not parsed[0]:
            return False
        host, port = parsed
        return any(host == allowed and allowed_port in (None, port) for allowed, allowed_port in self._allowed)

    def for_request(self, request: Any) -> str:
        """``base_url`` for a Litestar/ASGI request: its scheme, Host header and server address."""
        return self.base_url(request.scope["scheme"], request.headers.get("host"), request.scope.get("server"))

    def base_url(self, scheme: str, host_header: str | None, server: tuple[str, int | None] | None) -> str:
        """The base of image URLs for one request (see the module's docstring for the order)."""
        if self.public_base_url:
            return self.public_base_url
        if host_header and self.allows(host_header):
            return f"{scheme}://{host_header}"
        if server is None:
            return f"{scheme}://localhost"
        host, port = server
        host = f"[{host}]" if ":" in host else host
        default = 443 if scheme == "https" else 80
        return f"{scheme}://{host}" + (f":{port}" if port not in (None, default) else "")
