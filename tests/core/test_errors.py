"""The error hierarchy: each class's HTTP status, OpenAI type and code, and the router's flags."""

from __future__ import annotations

import pytest

from core.errors import (
    AuthenticationFailed,
    BackendError,
    BoltgateError,
    ClientError,
    ContentFiltered,
    ContentPolicyViolation,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidRequest,
    ModelNotFound,
    NoBackendAvailable,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    PriceCeilingExceeded,
    RetryableBackendError,
    RouteAttempt,
    UnusableOutput,
    VendorAuthError,
    VendorOutOfCredit,
    VendorProtocolError,
    VendorRateLimited,
    VendorRejectedRequest,
    VendorTimeout,
    VendorUnavailable,
)


@pytest.mark.parametrize(("error_class", "status", "error_type", "code"), [
    (InvalidRequest, 400, "invalid_request_error", "invalid_request"),
    (ModelNotFound, 404, "invalid_request_error", "model_not_found"),
    (PayloadTooLarge, 413, "invalid_request_error", "payload_too_large"),
    (ContentPolicyViolation, 400, "invalid_request_error", "content_policy_violation"),
    (AuthenticationFailed, 401, "authentication_error", "invalid_api_key"),
    (PermissionDenied, 403, "permission_error", "permission_denied"),
    (InsufficientCredits, 402, "insufficient_quota", "insufficient_credits"),
    (PriceCeilingExceeded, 402, "insufficient_quota", "price_ceiling_exceeded"),
    (IdempotencyConflict, 409, "invalid_request_error", "idempotency_conflict"),
    (NotFound, 404, "invalid_request_error", "not_found"),
    (NoBackendAvailable, 503, "server_error", "no_backend_available"),
    (VendorUnavailable, 502, "server_error", "backend_error"),
    (ContentFiltered, 400, "invalid_request_error", "content_policy_violation"),
    (VendorRejectedRequest, 400, "invalid_request_error", "upstream_rejected_request"),
])
def test_each_error_maps_to_its_status_type_and_code(
    error_class: type[BoltgateError], status: int, error_type: str, code: str
) -> None:
    error = error_class("what went wrong")

    assert (error.status_code, error.error_type, error.code) == (status, error_type, code)
    assert error.body() == {"error": {"message": "what went wrong", "type": error_type, "param": None, "code": code}}


@pytest.mark.parametrize("error_class", [InvalidRequest, ModelNotFound, PayloadTooLarge, ContentPolicyViolation,
                                         AuthenticationFailed, PermissionDenied, InsufficientCredits,
                                         PriceCeilingExceeded, IdempotencyConflict, NotFound])
def test_client_errors_are_client_errors(error_class: type[BoltgateError]) -> None:
    assert issubclass(error_class, ClientError)
    assert not issubclass(error_class, BackendError)


def test_the_body_carries_param_and_an_overridden_code() -> None:
    error = InvalidRequest("bad size", param="size", code="invalid_size", status_code=422)

    assert error.status_code == 422
    assert error.body()["error"] == {"message": "bad size", "type": "invalid_request_error", "param": "size",
                                     "code": "invalid_size"}


def test_overriding_one_instance_leaves_the_class_alone() -> None:
    InvalidRequest("x", code="special", status_code=422)

    assert InvalidRequest("y").code == "invalid_request"
    assert InvalidRequest("y").status_code == 400


def test_an_error_carries_response_headers() -> None:
    error = BoltgateError("slow down", headers={"retry-after": "3"})

    assert error.headers == {"retry-after": "3"}
    assert BoltgateError("other").headers == {}


@pytest.mark.parametrize(("error_class", "retryable", "failover", "quarantine", "outcome"), [
    (VendorUnavailable, True, True, False, "unavailable"),
    (VendorRateLimited, True, True, False, "rate_limited"),
    (VendorTimeout, True, True, False, "timeout"),
    (VendorProtocolError, True, True, False, "protocol_error"),
    (UnusableOutput, False, True, False, "unusable_output"),
    (VendorAuthError, False, True, True, "auth_error"),
    (VendorOutOfCredit, False, True, True, "out_of_credit"),
    (ContentFiltered, False, True, False, "content_filtered"),
    (VendorRejectedRequest, False, True, False, "rejected"),
])
def test_backend_errors_tell_the_router_what_to_do(
    error_class: type[BackendError], retryable: bool, failover: bool, quarantine: bool, outcome: str
) -> None:
    error = error_class("vendor said no")

    assert (error.retryable, error.failover, error.quarantine, error.outcome) == (
        retryable, failover, quarantine, outcome)
    assert issubclass(error_class, RetryableBackendError) == retryable


def test_a_backend_error_keeps_the_vendors_status_retry_after_and_code() -> None:
    error = VendorRateLimited("429", status=429, retry_after=2.5, vendor_code="rate_limit")

    assert (error.status, error.retry_after, error.vendor_code) == (429, 2.5, "rate_limit")


def test_a_route_attempt_describes_itself() -> None:
    assert RouteAttempt("runflow", "eu", "timeout").describe() == "runflow/eu: timeout"
    assert RouteAttempt("runflow", "eu", "unavailable", 503, "bad gateway").describe() == (
        "runflow/eu: unavailable 503 (bad gateway)")


def test_no_backend_available_lists_every_attempt_and_every_skip() -> None:
    attempts = [RouteAttempt("a", "r1", "unavailable", 503), RouteAttempt("b", "r2", "timeout")]

    error = NoBackendAvailable("Every route failed", attempts, ["c:r3: circuit open"])

    assert error.message == ("Every route failed. attempts: a/r1: unavailable 503; b/r2: timeout. "
                             "skipped: c:r3: circuit open")
    assert error.attempts == attempts
    assert error.skipped == ["c:r3: circuit open"]
    assert str(error) == error.message


def test_no_backend_available_with_nothing_tried_is_just_the_reason() -> None:
    assert NoBackendAvailable("No route can serve this request").message == "No route can serve this request"


def test_a_backend_error_says_what_the_vendor_billed() -> None:
    assert not VendorUnavailable("down").billed
    unusable = UnusableOutput("no known shape", run_seconds=1.5)
    assert unusable.billed and unusable.run_seconds == 1.5 and unusable.vendor_cost_usd is None
