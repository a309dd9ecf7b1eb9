"""Webhook delivery: one signed POST per finished job, retried with backoff, under the outbound
policy.

The URL is checked when the job is submitted (``check``: https, no credentials, no internal
address literal, and callable at all: no whitespace or control character, a host a name or an
address can be) and again when it is called: the connection goes through
``CheckedResolver``, so a name that resolves to a loopback, private, link-local or metadata
address is refused at connect time, whatever it resolved to at submit. Hosts listed in
``jobs.webhook.allowed_hosts`` are exempt (a receiver inside the operator's network).
Redirects are not followed. A POST answered 2xx is delivered; anything else (a status, a
timeout, a refused connection) is retried after ``backoff_initial_s`` doubling up to
``backoff_max_s``, at most ``max_attempts`` POSTs in all. A refused address is not retried.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
from dataclasses import asdict, dataclass

import aiohttp

from backends.vendors.url_policy import CheckedResolver, OutboundPolicy
from core.errors import InvalidRequest, UnsafeVendorUrl
from proxy.jobs.signature import SIGNATURE_HEADER, sign
from proxy.metrics import WEBHOOK_ATTEMPTS, WEBHOOK_GIVEN_UP, labelled
from proxy.settings import WebhookConfig

log = logging.getLogger(__name__)
MAX_URL_LENGTH = 2048
_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")
"""A host name as DNS can hold it, after IDNA (underscores allowed, as resolvers take them)."""


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    delivered: bool
    attempts: int
    status: int | None = None
    """The last HTTP status the receiver answered, if any."""
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def callable_host(url: str, host: str) -> bool:
    """Whether ``url``, whose form the outbound policy allowed (a scheme, a host, a port that is a
    number), could ever be POSTed to: no whitespace or control character anywhere, and its
    ``host`` an address or a name DNS can hold. Otherwise the job is queued and charged, and every
    delivery fails (a space in the host, a CRLF in the path)."""
    if any(char.isspace() or char < " " or char == "\x7f" for char in url):
        return False
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        name = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return _HOST_NAME.fullmatch(name) is not None


class WebhookSender:
    def __init__(self, config: WebhookConfig) -> None:
        self._config = config
        self._policy = OutboundPolicy.trusting(config.allowed_hosts)
        self._session: aiohttp.ClientSession | None = None

    def check(self, url: str) -> str:
        """``url`` when the policy allows it; else a 400 naming ``webhook_url``."""
        if len(url) > MAX_URL_LENGTH:
            raise InvalidRequest(f"webhook_url is longer than {MAX_URL_LENGTH} characters", param="webhook_url")
        try:
            parts = self._policy.check(url)
        except UnsafeVendorUrl as refused:
            raise InvalidRequest(f"webhook_url refused: {refused.message}", param="webhook_url",
                                 code="webhook_url_refused") from refused
        if not callable_host(url, parts.hostname or ""):
            raise InvalidRequest("webhook_url is not a URL that can be called: it has whitespace or a control "
                                 "character, or a host that is no name or address", param="webhook_url",
                                 code="invalid_url")
        return url

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=100, resolver=CheckedResolver(self._policy))
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def deliver(self, url: str, body: bytes, secret: str) -> WebhookOutcome:
        """POST ``body`` until the receiver answers 2xx or the attempts run out."""
        status: int | None = None
        error: str | None = None
        delay = self._config.backoff_initial_s
        for attempt in range(1, self._config.max_attempts + 1):
            if attempt > 1:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._config.backoff_max_s)
            try:
                self._policy.check(url)
                status = await self._post(url, body, secret)
            except UnsafeVendorUrl as refused:
                labelled(WEBHOOK_ATTEMPTS, "refused").inc()
                return WebhookOutcome(False, attempt, None, refused.message)
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, PermissionError):  # CheckedResolver: internal addresses only
                    labelled(WEBHOOK_ATTEMPTS, "refused").inc()
                    return WebhookOutcome(False, attempt, None, f"{exc.host} resolves only to non-public addresses")
                error, status = f"could not connect: {exc.os_error}", None
            except (aiohttp.ClientError, TimeoutError) as exc:
                error, status = f"{type(exc).__name__}: {exc}"[:200], None
            else:
                if 200 <= status < 300:
                    labelled(WEBHOOK_ATTEMPTS, "delivered").inc()
                    return WebhookOutcome(True, attempt, status)
                error = f"the receiver answered {status}"
            labelled(WEBHOOK_ATTEMPTS, "failed").inc()
            log.info("webhook attempt %d to %s failed: %s", attempt, url, error)
        WEBHOOK_GIVEN_UP.inc()
        return WebhookOutcome(False, self._config.max_attempts, status, error)

    async def _post(self, url: str, body: bytes, secret: str) -> int:
        headers = {"content-type": "application/json", "user-agent": "boltgate-webhooks/1",
                   SIGNATURE_HEADER: sign(secret, body)}
        timeout = aiohttp.ClientTimeout(total=self._config.timeout_s)
        async with self._open().post(url, data=body, headers=headers, timeout=timeout,
                                     allow_redirects=False) as answer:
            return answer.status

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
