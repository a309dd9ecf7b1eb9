"""The shared mechanics for every vendor: send, classify, fetch output URLs, poll jobs.

Bytes travel through an ``HttpClient`` (``backends.vendors.http``), one pooled connection set
per route and region; this module turns answers into images or typed errors.

Three rules about money live here. Once a vendor has answered a generation with success (or
created a job), its work is billed: any failure after that point is ``billed`` and is never
retried on the same route (that would pay again), only failed over. A create whose answer was
lost (a timeout, a reset, a 5xx not documented as "not started") may have started that billed
work too: it is an ``AmbiguousCreate``, never sent again to the account, unless the vendor
honours an idempotency key, which every create then carries (``create_safety``). And the
route's key goes to the route's own base URL and nowhere else, whatever URL an answer names.

Vendors are not trusted: answers are read up to a byte cap, output URLs are fetched under the
outbound policy the route's HTTP client carries (``url_policy``, ``output_fetch``), every image's
declared size is checked before anything decodes it, and every error message is scrubbed of the
key before it reaches a client or a log line.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import orjson

from backends.base import BackendResult, Capabilities, GeneratedImage, ProbeOutcome
from backends.vendors.classify import classify_status
from backends.vendors.create_safety import create_failure
from backends.vendors.http import HttpClient, make_http_client
from backends.vendors.image_check import check_image
from backends.vendors.messages import HttpAnswer, HttpCall, VendorOutput
from backends.vendors.output_fetch import FetchLimits, fetch_output
from backends.vendors.polling import follow_job, poll_job
from backends.vendors.probes import PROBES
from backends.vendors.redact import Redactor
from backends.vendors.spec import JobProtocol, VendorSpec
from backends.vendors.url_policy import OutboundPolicy
from core.create_key import current_create_key, new_create_key
from core.deadline import Deadline
from core.errors import (
    AmbiguousCreate,
    BackendError,
    ContentFiltered,
    UnsafeVendorUrl,
    UnusableOutput,
    VendorProtocolError,
    VendorTimeout,
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
        """``http_client`` (owned, closed by ``aclose``) defaults to the default kind's pooled client
        (the lean one) under the route's outbound policy (``route_policy``); a client passed in must carry that policy
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
        self._http: HttpClient = http_client or make_http_client(
            "lean", max_answer_bytes=self.limits.max_answer_bytes, max_redirects=self.limits.max_redirects,
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

    def excerpt(self, body: bytes | bytearray) -> str:
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
        key = current_create_key() or new_create_key()
        call = self.spec.build_request(request, self.options)
        job = self.spec.job
        if job is not None and job.client_ref_field is not None and isinstance(call.json, dict):
            call = HttpCall(call.method, call.path, {**call.json, job.client_ref_field: key})
        if job is not None:
            output = await self._run_job(job, call, key, budget)
        elif self.spec.parse_output is not None:
            output = self._parse(await self._create(call, key, budget))
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

    async def _run_job(self, job: JobProtocol, call: HttpCall, key: str, budget: Deadline) -> VendorOutput:
        """Create the job and follow it. A job vendor that lets us find a job by our own id gets
        half the time for its create (documented to answer at once), so that after a lost answer
        there is time left to look the job up and follow it: paid once, used once."""
        if job.find is None:
            return await poll_job(self, job, await self._create(call, key, budget), budget, self.poll_interval_s)
        try:
            created = await self._create(call, key, Deadline(budget.cap(budget.remaining() / 2)))
        except AmbiguousCreate as lost:
            job_id = await self._find_job(job, key, budget)
            if job_id is None:
                raise
            log.info("%s: found job %s after its create's answer was lost (%s)", self.vendor, job_id, lost.message)
            return await follow_job(self, job, job_id, budget, self.poll_interval_s)
        return await poll_job(self, job, created, budget, self.poll_interval_s)

    async def _find_job(self, job: JobProtocol, key: str, budget: Deadline) -> str | None:
        """The id of the job created under ``key``, or None when the lookup shows none or fails
        (the create then stays ambiguous: the router fails over)."""
        assert job.find is not None and job.found is not None
        try:
            return job.found(await self.send(job.find(key, self.options), budget), key)
        except BackendError as exc:  # VendorProtocolError included: a search answer we cannot read
            log.warning("%s: could not look up the job of a lost create: %s", self.vendor, exc.message)
            return None

    async def _create(self, call: HttpCall, key: str, budget: Deadline) -> HttpAnswer:
        """Send the call that starts billed work. A failure that proves nothing started is raised
        as it is (retryable where its class says so); one that leaves it unknown is an
        ``AmbiguousCreate``, unless the vendor's idempotency key makes sending it again safe."""
        if budget.expired():
            raise VendorTimeout(f"no time left to call {self.vendor}")
        headers: dict[str, str] = {}
        if self.spec.idempotency_header is not None:
            headers[self.spec.idempotency_header] = key
        try:
            return await self.send(call, budget, headers=headers)
        except BackendError as error:
            failure = create_failure(self.spec, error)
            if failure is not error:
                log.warning("%s", failure.message)
                raise failure from error
            raise

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

    async def send(self, call: HttpCall, budget: Deadline, *, check: bool = True,
                   headers: Mapping[str, str] | None = None) -> HttpAnswer:
        """Send one call within ``budget`` (with ``headers`` added to the route's own); a vendor
        error status raises its classified error.

        The key travels only to the route's own origin: a call to any other URL is refused."""
        url = call.path if call.path.startswith(("http://", "https://")) else self.base_url + call.path
        if _origin(url) != self._origin:
            raise UnsafeVendorUrl(f"{self.vendor}: refusing to send the route's key to {_origin(url)} "
                                  "(off its own origin)")
        content = orjson.dumps(call.json) if call.json is not None else None
        sent_headers = {**self._headers, **headers} if headers else self._headers
        if self.spec.deadline_header is not None:
            sent_headers = {**sent_headers, self.spec.deadline_header: f"{budget.remaining():.3f}"}
        answer = await self._http.request(call.method, url, sent_headers, content, budget.remaining(),
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


@functools.lru_cache(maxsize=256)
def _origin(url: str) -> str:
    """Cached: a route's calls go to a few URLs (a job vendor's poll URLs, one per job, pass
    through; 256 keeps the cache small)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
