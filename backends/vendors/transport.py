"""The shared HTTP mechanics for every vendor: send, classify, fetch output URLs, poll jobs.

One pooled httpx transport per route and region. Vendor API calls go straight to the
transport (``handle_async_request``): the client's layers (auth flows, cookies, redirects) cost
more CPU than the rest of the gateway and serve no purpose against a JSON API. Output URLs,
which may redirect, are fetched through a client over the same pool. Low-level httpx failures
are translated here, in one place, into the gateway's typed errors.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import httpx
import orjson
from httpx_aiohttp import AiohttpTransport

from backends.base import BackendResult, Capabilities, GeneratedImage
from backends.vendors.classify import classify_status
from backends.vendors.polling import poll_job
from backends.vendors.spec import VendorSpec
from backends.vendors.wire import HttpAnswer, HttpCall, VendorOutput
from proxy.deadline import Deadline
from proxy.errors import ContentFiltered, VendorProtocolError, VendorTimeout, VendorUnavailable
from proxy.request import ImageRequest

log = logging.getLogger(__name__)

_JSON_HEADERS = {"content-type": "application/json", "accept": "application/json"}


def new_transport(max_connections: int = 1000) -> httpx.AsyncBaseTransport:
    """A connection pool sized for thousands of requests in flight on one pod.

    aiohttp's pool under httpx's interface: httpcore's pool scans every pooled connection on
    each request (and asks each socket whether it is readable), which at a few dozen
    connections cost more CPU than all the rest of the gateway.
    """
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    return AiohttpTransport(limits=limits)


def _timeouts(seconds: float) -> dict[str, float]:
    seconds = max(seconds, 0.001)
    return {"connect": seconds, "read": seconds, "write": seconds, "pool": seconds}


class VendorBackend:
    """One vendor in one region, driven by that vendor's ``VendorSpec``."""

    def __init__(
        self,
        spec: VendorSpec,
        *,
        region: str,
        base_url: str,
        api_key: str | None,
        timeout_s: float = 30.0,
        options: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.spec = spec
        self._region = region
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.options: dict[str, str] = {**spec.default_options, **(options or {})}
        self._headers = {**_JSON_HEADERS, **spec.auth_headers(api_key)}
        self._transport = transport or new_transport()
        self._downloads = httpx.AsyncClient(transport=self._transport, follow_redirects=True)

    @property
    def vendor(self) -> str:
        return self.spec.name

    @property
    def region(self) -> str:
        return self._region

    @property
    def capabilities(self) -> Capabilities:
        return self.spec.capabilities

    async def generate(self, request: ImageRequest, deadline: Deadline) -> BackendResult:
        budget = Deadline(deadline.cap(self.timeout_s))
        call = self.spec.build_request(request, self.options)
        answer = await self.send(call, budget)
        output: VendorOutput
        if self.spec.job is not None:
            output = await poll_job(self, self.spec.job, answer, budget)
        elif self.spec.parse_output is not None:
            try:
                output = self.spec.parse_output(answer)
            except VendorProtocolError:
                log.warning("%s answered a body we do not know: %s", self.vendor, answer.body[:500])
                raise
        else:
            raise TypeError(f"{self.spec.name} has neither parse_output nor job")
        if output.flagged_nsfw:
            raise ContentFiltered(f"{self.vendor} flagged the image as NSFW")
        images = [GeneratedImage(b64=text) for text in output.b64_images]
        if output.image_urls:
            images += await asyncio.gather(*(self._fetch_image(url, budget) for url in output.image_urls))
        if not images:
            raise VendorProtocolError(f"{self.vendor} answered without an image")
        return BackendResult(
            images=images,
            run_seconds=output.run_seconds,
            vendor_cost_usd=output.vendor_cost_usd,
            vendor_request_id=output.vendor_request_id,
        )

    async def send(self, call: HttpCall, budget: Deadline, *, check: bool = True) -> HttpAnswer:
        """Send one call within ``budget``; a vendor error status raises its classified error."""
        url = call.path if call.path.startswith(("http://", "https://")) else self.base_url + call.path
        content = orjson.dumps(call.json) if call.json is not None else None
        request = httpx.Request(call.method, url, content=content, headers=self._headers,
                                extensions={"timeout": _timeouts(budget.remaining())})
        try:
            response = await self._transport.handle_async_request(request)
            try:
                body = await response.aread()
            finally:
                await response.aclose()
        except httpx.TimeoutException as exc:
            raise VendorTimeout(f"{self.vendor} did not answer in time ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise VendorUnavailable(f"{self.vendor} unreachable: {type(exc).__name__}: {exc}") from exc
        answer = HttpAnswer(response.status_code, response.headers, body)
        if check and answer.status >= 400:
            raise self.classify(answer)
        return answer

    def classify(self, answer: HttpAnswer) -> Exception:
        body: Any
        try:
            body = orjson.loads(answer.body) if answer.body else None
            code, message = self.spec.error_fields(body)
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, VendorProtocolError):
            code, message = None, answer.body[:300].decode("utf-8", "replace")
        return classify_status(answer.status, answer.headers, vendor_code=code, message=message)

    async def _fetch_image(self, url: str, budget: Deadline) -> GeneratedImage:
        """Fetch a vendor's (short-lived) output URL once; the gateway re-serves the bytes."""
        try:
            response = await self._downloads.get(url, timeout=max(budget.remaining(), 0.001))
        except httpx.TimeoutException as exc:
            raise VendorTimeout(f"{self.vendor} output URL timed out") from exc
        except httpx.TransportError as exc:
            raise VendorUnavailable(f"{self.vendor} output URL unreachable: {exc}") from exc
        if response.status_code != 200:
            raise VendorProtocolError(f"{self.vendor} output URL answered {response.status_code}",
                                      status=response.status_code)
        return GeneratedImage(data=response.content)

    async def aclose(self) -> None:
        await self._downloads.aclose()
