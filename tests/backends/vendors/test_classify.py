"""The one status ladder, climbed by every vendor in the registry, and how long a vendor asks us to wait."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from typing import Any

import pytest
import respx

from backends.vendors.backend import VendorBackend
from backends.vendors.classify import classify_status, parse_retry_after
from backends.vendors.registry import VENDOR_SPECS
from core.deadline import Deadline
from core.errors import (
    BackendError,
    VendorAuthError,
    VendorNotFound,
    VendorRateLimited,
    VendorRejectedRequest,
    VendorTimeout,
    VendorUnavailable,
)
from core.request import ImageRequest

MakeBackend = Callable[..., VendorBackend]


class TestRetryAfter:
    def test_seconds(self) -> None:
        assert parse_retry_after({"retry-after": "7"}) == 7.0

    def test_fractional_seconds(self) -> None:
        assert parse_retry_after({"retry-after": "1.5"}) == 1.5

    def test_http_date_is_seconds_from_now(self) -> None:
        when = email.utils.formatdate(time.time() + 30, usegmt=True)
        seconds = parse_retry_after({"retry-after": when})
        assert seconds is not None and 28 <= seconds <= 30

    def test_http_date_in_the_past_is_zero(self) -> None:
        when = email.utils.formatdate(time.time() - 60, usegmt=True)
        assert parse_retry_after({"retry-after": when}) == 0.0

    def test_milliseconds_win_over_seconds(self) -> None:
        assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25

    def test_unreadable_milliseconds_fall_back_to_seconds(self) -> None:
        assert parse_retry_after({"retry-after-ms": "soon", "retry-after": "3"}) == 3.0

    def test_negative_is_zero(self) -> None:
        assert parse_retry_after({"retry-after": "-5"}) == 0.0

    @pytest.mark.parametrize("headers", [{}, {"retry-after": ""}, {"retry-after": "tomorrow"}])
    def test_absent_or_unreadable_is_none(self, headers: dict[str, str]) -> None:
        assert parse_retry_after(headers) is None


LADDER: list[tuple[int, type[BackendError]]] = [
    (400, VendorRejectedRequest),
    (401, VendorAuthError),
    (402, VendorAuthError),
    (403, VendorAuthError),
    (404, VendorNotFound),
    (408, VendorTimeout),
    (409, VendorRejectedRequest),
    (413, VendorRejectedRequest),
    (422, VendorRejectedRequest),
    (429, VendorRateLimited),
    (500, VendorUnavailable),
    (501, VendorUnavailable),
    (502, VendorUnavailable),
    (503, VendorUnavailable),
    (504, VendorUnavailable),
]
"""Every status, whichever vendor answers it: the one ladder, said once."""

ErrorEnvelope = Callable[[str, str], tuple[dict[str, Any], str | None]]

ERROR_ENVELOPES: dict[str, ErrorEnvelope] = {
    "callmissed": lambda code, message: ({"error": {"code": code, "message": message, "type": "api_error"}}, code),
    "aigateway": lambda code, message: ({"error": {"type": code, "message": message}}, code),
    "runflow": lambda code, message: ({"code": code, "message": message}, code),
    "eachlabs": lambda code, message: ({"error": message}, None),
    "imageapi": lambda code, message: ({"error": message, "code": code}, code),
    "worker": lambda code, message: ({"error": {"code": code, "message": message, "type": "server_error"}}, code),
}
"""How each vendor wraps an error (its per-vendor tests read the variants): body, and the code we read."""

REQUEST = ImageRequest(prompt="a cat")


def test_every_vendor_in_the_registry_has_its_error_envelope_here() -> None:
    assert set(ERROR_ENVELOPES) == set(VENDOR_SPECS)


@pytest.mark.parametrize("vendor", sorted(VENDOR_SPECS))
@pytest.mark.parametrize(("status", "kind"), LADDER)
async def test_every_vendor_answer_climbs_the_one_ladder(
    vendor_api: respx.MockRouter, make_backend: MakeBackend, vendor: str, status: int, kind: type[BackendError]
) -> None:
    """The vendor's first call answers ``status``: the error is the ladder's, with the vendor's code,
    its message and its ``Retry-After``."""
    backend = make_backend(VENDOR_SPECS[vendor])
    call = backend.spec.build_request(REQUEST, backend.options)
    body, code = ERROR_ENVELOPES[vendor]("some_code", "nope")
    vendor_api.request(call.method, call.path).respond(status, json=body, headers={"Retry-After": "3"})
    with pytest.raises(BackendError) as caught:
        await backend.generate(REQUEST, Deadline(5))
    error = caught.value
    assert type(error) is kind
    assert error.status == status
    assert error.vendor_code == code
    assert error.retry_after == 3.0
    assert f"vendor answered {status}" in error.message and "nope" in error.message


def test_rate_limit_carries_retry_after() -> None:
    error = classify_status(429, {"retry-after": "12"}, vendor_code=None, message="slow down")
    assert isinstance(error, VendorRateLimited)
    assert error.retry_after == 12.0


def test_the_router_flags_follow_from_the_class() -> None:
    auth = classify_status(401, {}, vendor_code=None, message="")
    rejected = classify_status(422, {}, vendor_code=None, message="")
    not_found = classify_status(404, {}, vendor_code=None, message="")
    unavailable = classify_status(503, {}, vendor_code=None, message="")
    assert auth.quarantine and auth.failover and not auth.retryable
    assert not rejected.failover and not rejected.retryable
    assert not_found.failover and not not_found.retryable and not_found.outcome == "not_found"
    assert unavailable.retryable


def test_long_messages_are_truncated() -> None:
    error = classify_status(500, {}, vendor_code=None, message="x" * 5000)
    assert len(error.message) < 400
