"""The shared mechanics for every vendor: send, classify, fetch output URLs, poll jobs.

Bytes travel through an ``HttpClient`` (``backends.vendors.http_client``), one pooled connection set
per route and region; this module turns answers into images or typed errors.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from backends.base import BackendResult, Capabilities, GeneratedImage, ProbeOutcome
from backends.vendors.classify import classify_status
from backends.vendors.http_client import AiohttpClient, HttpClient, HttpxClient
from backends.vendors.messages import HttpAnswer, HttpCall, VendorOutput
from backends.vendors.polling import poll_job
from backends.vendors.probes import PROBES
from backends.vendors.spec import VendorSpec
from core.deadline import Deadline
from core.errors import BackendError, ContentFiltered, VendorProtocolError, VendorTimeout, VendorUnavailable
from core.request import ImageRequest

log = logging.getLogger(__name__)

_JSON_HEADERS = {"content-type": "application/json", "accept": "application/json"}


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
        http_client: HttpClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """``http_client`` defaults to a pooled aiohttp session; ``transport`` (tests) wraps an httpx
        transport instead."""
        self.spec = spec
        self._region = region
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.options: dict[str, str] = {**spec.default_options, **(options or {})}
        self._headers = {**_JSON_HEADERS, **spec.auth_headers(api_key)}
        self._http: HttpClient = http_client or (HttpxClient(transport) if transport else AiohttpClient())

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
        answer = await self._http.request(call.method, url, self._headers, content, budget.remaining())
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
            answer = await self._http.request("GET", url, {}, None, budget.remaining(), follow_redirects=True)
        except (VendorUnavailable, VendorTimeout) as exc:
            raise type(exc)(f"{self.vendor} output URL: {exc.message}") from exc
        if answer.status != 200:
            raise VendorProtocolError(f"{self.vendor} output URL answered {answer.status}", status=answer.status)
        return GeneratedImage(data=answer.body)

    async def probe(self, timeout_s: float) -> ProbeOutcome:
        """One free request that says whether this vendor answers (see ``probes.PROBES``)."""
        spec = PROBES.get(self.vendor)
        if spec is None:
            return ProbeOutcome(True, "no probe defined for this vendor")
        started = time.monotonic()
        try:
            answer = await self._http.request(spec.method, self.base_url + spec.path(self.options),
                                              self._headers, None, timeout_s)
        except BackendError as exc:
            return ProbeOutcome(False, exc.message, time.monotonic() - started)
        return spec.verdict(answer.status, time.monotonic() - started)

    async def aclose(self) -> None:
        await self._http.aclose()
