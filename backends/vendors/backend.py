"""The shared mechanics for every vendor: send, classify, fetch output URLs, poll jobs.

Bytes travel through an ``HttpClient`` (``backends.vendors.http``), one pooled connection set
per route and region; this module turns answers into images or typed errors.

Two rules about money live here. Once a vendor has answered a generation with success (or
created a job), its work is billed: any failure after that point is ``billed`` and is never
retried on the same route (that would pay again), only failed over. And the route's key goes
to the route's own base URL and nowhere else, whatever URL an answer names.

Vendors are not trusted: answers are read up to a byte cap, output URLs are fetched under the
outbound policy the route's HTTP client carries (``url_policy``, ``output_fetch``), every image's
declared size is checked before anything decodes it, and every error message is scrubbed of the
key before it reaches a client or a log line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import orjson

from backends.base import BackendResult, Capabilities, GeneratedImage, ProbeOutcome
from backends.vendors.classify import classify_status
from backends.vendors.http import AiohttpClient, HttpClient
from backends.vendors.image_check import check_image
from backends.vendors.messages import HttpAnswer, HttpCall, VendorOutput
from backends.vendors.output_fetch import FetchLimits, fetch_output
from backends.vendors.polling import poll_job
from backends.vendors.probes import PROBES
from backends.vendors.redact import Redactor
from backends.vendors.spec import VendorSpec
from backends.vendors.url_policy import OutboundPolicy
from core.deadline import Deadline
from core.errors import (
    BackendError,
    ContentFiltered,
    UnsafeVendorUrl,
    UnusableOutput,
    VendorProtocolError,
)
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
        poll_interval_s: float | None = None,
        http_client: HttpClient | None = None,
        limits: FetchLimits | None = None,
        trusted_hosts: Sequence[str] = (),
    ) -> None:
        """``http_client`` (owned, closed by ``aclose``) defaults to a pooled aiohttp session under
        the route's outbound policy (``route_policy``); a client passed in must carry that policy
        itself (``make_http_client(kind, policy=...)``, as the wiring does). ``poll_interval_s``
        overrides the vendor's documented poll pace (a loopback simulator can be polled faster
        than a real vendor should be)."""
        self.spec = spec
        self._region = region
        self.base_url = base_url.rstrip("/")
        self._origin = _origin(self.base_url)
        self.timeout_s = timeout_s
        self.options: dict[str, str] = {**spec.default_options, **(options or {})}
        self.poll_interval_s = poll_interval_s if poll_interval_s is not None else (
            spec.job.poll_interval_s if spec.job is not None else 0.0)
        self._headers = {**_JSON_HEADERS, **spec.auth_headers(api_key, self.options)}
        self.limits = limits or FetchLimits()
        self.redactor = Redactor([api_key])
        self._http: HttpClient = http_client or AiohttpClient(
            max_answer_bytes=self.limits.max_answer_bytes, max_redirects=self.limits.max_redirects,
            policy=route_policy(self.base_url, trusted_hosts))

    @property
    def http_client(self) -> HttpClient:
        """The pooled client this route region calls through (its own; closed by ``aclose``)."""
        return self._http

    @property
    def vendor(self) -> str:
        return self.spec.name

    @property
    def region(self) -> str:
        return self._region

    @property
    def capabilities(self) -> Capabilities:
        return self.spec.capabilities

    def excerpt(self, body: bytes) -> str:
        """A body fit for a log line: cut short, the route's key and anything key-shaped scrubbed."""
        return self.redactor.excerpt(body)

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
        answer = await self.send(call, budget)  # failures up to here cost nothing: retryable
        if self.spec.job is not None:
            output = await poll_job(self, self.spec.job, answer, budget, self.poll_interval_s)
        elif self.spec.parse_output is not None:
            output = self._parse(answer)
        else:
            raise TypeError(f"{self.spec.name} has neither parse_output nor job")
        try:
            images = await self._images(output, budget)
        except BackendError as error:
            raise _billed(error, output) from error
        return BackendResult(
            images=images,
            run_seconds=output.run_seconds,
            vendor_cost_usd=output.vendor_cost_usd,
            vendor_request_id=output.vendor_request_id,
        )

    def _parse(self, answer: HttpAnswer) -> VendorOutput:
        """A success answer we can't read was still a success for the vendor: billed."""
        assert self.spec.parse_output is not None
        try:
            return self.spec.parse_output(answer)
        except VendorProtocolError as exc:
            log.warning("%s answered a body we do not know: %s", self.vendor, self.excerpt(answer.body))
            raise UnusableOutput(f"{self.vendor}: {exc.message}", status=answer.status) from exc

    async def _images(self, output: VendorOutput, budget: Deadline) -> list[GeneratedImage]:
        if output.flagged_nsfw:
            raise ContentFiltered(f"{self.vendor} flagged the image as NSFW")
        try:
            images = [GeneratedImage(b64=text) for text in output.b64_images]
        except VendorProtocolError as exc:
            raise UnusableOutput(f"{self.vendor} image: {exc.message}") from exc
        if output.image_urls:
            images += await asyncio.gather(*(self._fetch_image(url, budget) for url in output.image_urls))
        if not images:
            raise UnusableOutput(f"{self.vendor} answered without an image")
        for image in images:
            check_image(image, self.vendor, self.limits.max_image_pixels)
        return images

    async def send(self, call: HttpCall, budget: Deadline, *, check: bool = True) -> HttpAnswer:
        """Send one call within ``budget``; a vendor error status raises its classified error.

        The key travels only to the route's own origin: a call to any other URL is refused."""
        url = call.path if call.path.startswith(("http://", "https://")) else self.base_url + call.path
        if _origin(url) != self._origin:
            raise UnsafeVendorUrl(f"{self.vendor}: refusing to send the route's key to {_origin(url)} "
                                  "(off its own origin)")
        content = orjson.dumps(call.json) if call.json is not None else None
        headers = self._headers
        if self.spec.deadline_header is not None:
            headers = {**headers, self.spec.deadline_header: f"{budget.remaining():.3f}"}
        answer = await self._http.request(call.method, url, headers, content, budget.remaining(),
                                          max_bytes=self.limits.max_answer_bytes)
        if check and answer.status >= 400:
            raise self.classify(answer)
        return answer

    def classify(self, answer: HttpAnswer) -> BackendError:
        body: Any
        try:
            body = orjson.loads(answer.body) if answer.body else None
            code, message = self.spec.error_fields(body)
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, VendorProtocolError):
            code, message = None, self.redactor.excerpt(answer.body, 300)
        return classify_status(answer.status, answer.headers, vendor_code=code,
                               message=self.redactor.scrub(str(message)), retry_statuses=self.spec.retry_statuses)

    async def _fetch_image(self, url: str, budget: Deadline) -> GeneratedImage:
        """Fetch a vendor's (short-lived) output URL once, without the key, under the outbound
        policy and limits; the gateway re-serves the bytes. A failure is billed (``_images``)."""
        try:
            return await fetch_output(self._http, url, budget, self.limits)
        except BackendError as exc:
            exc.message = f"{self.vendor} output URL: {exc.message}"
            exc.args = (exc.message,)
            raise

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


def _billed(error: BackendError, output: VendorOutput) -> BackendError:
    """A failure after the vendor delivered: it was paid for, so never retried on this route."""
    if isinstance(error, ContentFiltered):
        return ContentFiltered(error.message, billed=True, run_seconds=output.run_seconds,
                               vendor_cost_usd=output.vendor_cost_usd)
    return UnusableOutput(error.message, status=error.status, run_seconds=output.run_seconds,
                          vendor_cost_usd=output.vendor_cost_usd)


def route_policy(base_url: str, trusted_hosts: Sequence[str] = ()) -> OutboundPolicy:
    """What a route may fetch: its own origin (a loopback simulator, a private worker) and the
    hosts the operator trusts may be plain http and private; everything else https and public."""
    return OutboundPolicy.trusting([base_url, *trusted_hosts])


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
