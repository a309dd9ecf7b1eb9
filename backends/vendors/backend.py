"""The shared mechanics for every vendor: send, classify, fetch output URLs, poll jobs.

Bytes travel through an ``HttpClient`` (``backends.vendors.http_client``), one pooled connection set
per route and region; this module turns answers into images or typed errors.

Vendors are not trusted: answers are read up to a byte cap, absolute URLs in them are called with
our key only on the route's own origin, output URLs are fetched under the outbound policy
(``output_fetch``), every image's declared size is checked before anything decodes it, and every
error message is scrubbed of the key before it reaches a client or a log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from backends.base import BackendResult, Capabilities, GeneratedImage
from backends.vendors.classify import classify_status
from backends.vendors.http_client import AiohttpClient, HttpClient, HttpxClient
from backends.vendors.messages import HttpAnswer, HttpCall, VendorOutput
from backends.vendors.output_fetch import FetchLimits, OutputFetcher
from backends.vendors.polling import poll_job
from backends.vendors.redact import Redactor
from backends.vendors.spec import VendorSpec
from backends.vendors.url_policy import CheckedResolver, Origin, OutboundPolicy
from core.deadline import Deadline
from core.errors import BackendError, ContentFiltered, ImageRefused, UnsafeVendorUrl, VendorProtocolError
from core.image_header import declared_size
from core.request import ImageRequest

log = logging.getLogger(__name__)

_JSON_HEADERS = {"content-type": "application/json", "accept": "application/json"}
_HEADER_BYTES = 1024
"""Enough of most images to read their declared size (a PNG's is in its first 24 bytes); a longer
header (a JPEG with large metadata) is read from the whole image."""


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
        limits: FetchLimits | None = None,
        trusted_hosts: Sequence[str] = (),
    ) -> None:
        """``http_client`` defaults to a pooled aiohttp session; ``transport`` (tests) wraps an httpx
        transport instead. Output URLs go through a second aiohttp session whose resolver enforces
        the outbound policy (or through the given client). ``trusted_hosts`` may be fetched over
        http and at private addresses, as the route's own base URL may."""
        self.spec = spec
        self._region = region
        self.base_url = base_url.rstrip("/")
        self._origin = Origin.parse(self.base_url)
        self._scheme = urlsplit(self.base_url).scheme
        self.timeout_s = timeout_s
        self.options: dict[str, str] = {**spec.default_options, **(options or {})}
        self._headers = {**_JSON_HEADERS, **spec.auth_headers(api_key)}
        self.limits = limits or FetchLimits()
        self.redactor = Redactor([api_key])
        self._http: HttpClient = http_client or (HttpxClient(transport) if transport else AiohttpClient())
        policy = OutboundPolicy.trusting([self.base_url, *trusted_hosts])
        self._outputs_http: HttpClient = (
            self._http if http_client or transport else AiohttpClient(resolver=CheckedResolver(policy))
        )
        self._outputs = OutputFetcher(self._outputs_http, policy, self.limits)

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
        try:
            return await self._generate(request, deadline)
        except BackendError as error:
            error.message = self.redactor.scrub(error.message)
            error.args = (error.message,)
            raise

    async def _generate(self, request: ImageRequest, deadline: Deadline) -> BackendResult:
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
                log.warning("%s answered a body we do not know: %s", self.vendor, self.redactor.excerpt(answer.body))
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
        for image in images:
            self._check_size(image)
        return BackendResult(
            images=images,
            run_seconds=output.run_seconds,
            vendor_cost_usd=output.vendor_cost_usd,
            vendor_request_id=output.vendor_request_id,
        )

    async def send(self, call: HttpCall, budget: Deadline, *, check: bool = True) -> HttpAnswer:
        """Send one call within ``budget``; a vendor error status raises its classified error."""
        url = self.base_url + call.path
        if call.path.startswith(("http://", "https://")):
            url = call.path
            self._check_own_origin(url)
        content = orjson.dumps(call.json) if call.json is not None else None
        answer = await self._http.request(call.method, url, self._headers, content, budget.remaining(),
                                          max_bytes=self.limits.max_answer_bytes)
        if check and answer.status >= 400:
            raise self.classify(answer)
        return answer

    def classify(self, answer: HttpAnswer) -> Exception:
        body: Any
        try:
            body = orjson.loads(answer.body) if answer.body else None
            code, message = self.spec.error_fields(body)
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, VendorProtocolError):
            code, message = None, self.redactor.excerpt(answer.body, 300)
        return classify_status(answer.status, answer.headers, vendor_code=code,
                               message=self.redactor.scrub(str(message)))

    def _check_own_origin(self, url: str) -> None:
        """An absolute URL from a vendor's answer (a job's cancel link) gets our key only on the
        route's own origin; anywhere else it is refused, never sent."""
        try:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            parts, port = None, 0
        if (parts is None or parts.username is not None or parts.password is not None
                or parts.scheme != self._scheme or not self._origin.admits(parts.hostname or "", port)):
            raise UnsafeVendorUrl(f"{self.vendor} named {url.split('?', 1)[0][:120]}, off its own origin: not called")

    def _check_size(self, image: GeneratedImage) -> None:
        """The declared size of every image, from its first bytes, before anything decodes it."""
        try:
            try:
                declared_size(image.head(_HEADER_BYTES), self.limits.max_image_pixels)
            except ImageRefused as first:
                if first.code == "image_too_large" or len(image) <= _HEADER_BYTES:
                    raise
                declared_size(image.data, self.limits.max_image_pixels)  # a header longer than the head
        except ImageRefused as exc:
            raise VendorProtocolError(f"{self.vendor} answered an image we refuse: {exc}") from exc

    async def _fetch_image(self, url: str, budget: Deadline) -> GeneratedImage:
        """Fetch a vendor's (short-lived) output URL once; the gateway re-serves the bytes."""
        try:
            return await self._outputs.fetch(url, budget)
        except BackendError as exc:
            exc.message = f"{self.vendor} output URL: {exc.message}"
            exc.args = (exc.message,)
            raise

    async def aclose(self) -> None:
        await self._http.aclose()
        if self._outputs_http is not self._http:
            await self._outputs_http.aclose()
