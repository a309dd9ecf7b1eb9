"""The one status ladder, and how long a vendor asks us to wait."""

from __future__ import annotations

import email.utils
import time

import pytest

from backends.vendors.classify import classify_status, parse_retry_after
from core.errors import (
    BackendError,
    VendorAuthError,
    VendorNotFound,
    VendorOutOfCredit,
    VendorRateLimited,
    VendorRejectedRequest,
    VendorTimeout,
    VendorUnavailable,
)


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


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, VendorRejectedRequest),
        (401, VendorAuthError),
        (402, VendorOutOfCredit),
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
    ],
)
def test_status_ladder(status: int, kind: type[BackendError]) -> None:
    error = classify_status(status, {}, vendor_code="some_code", message="nope")
    assert type(error) is kind
    assert error.status == status
    assert error.vendor_code == "some_code"
    assert f"vendor answered {status} some_code: nope" in error.message


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
    # A vendor refusing a request we accepted: that vendor can't, another may. No quarantine.
    assert rejected.failover and not rejected.retryable and not rejected.quarantine
    assert not_found.failover and not not_found.retryable and not_found.outcome == "not_found"
    assert unavailable.retryable


def test_a_payment_refusal_quarantines_like_an_auth_refusal() -> None:
    error = classify_status(402, {}, vendor_code=None, message="")
    assert isinstance(error, VendorAuthError) and error.quarantine and error.failover


@pytest.mark.parametrize("status", [409, 422])
def test_a_vendor_may_document_a_4xx_as_retryable(status: int) -> None:
    error = classify_status(status, {}, vendor_code=None, message="", retry_statuses=frozenset({status}))
    assert isinstance(error, VendorUnavailable) and error.retryable
    assert type(classify_status(status, {}, vendor_code=None, message="")) is VendorRejectedRequest


def test_long_messages_are_truncated() -> None:
    error = classify_status(500, {}, vendor_code=None, message="x" * 5000)
    assert len(error.message) < 400
