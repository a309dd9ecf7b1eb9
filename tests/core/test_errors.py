"""The error hierarchy: each class's HTTP status, OpenAI type and code, and the router's flags."""

from __future__ import annotations

import inspect
from decimal import Decimal

import pytest

import core.errors
from core.errors import (
    AmbiguousCreate,
    AuthenticationFailed,
    BackendError,
    BoltgateError,
    CatalogError,
    ClientError,
    ConfigurationError,
    ContentFiltered,
    ContentPolicyViolation,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidRequest,
    JobAbandoned,
    JobFailed,
    KeyRateLimited,
    ModelNotFound,
    NoBackendAvailable,
    NotFound,
    NotReady,
    PayloadTooLarge,
    PermissionDenied,
    PipelineFailed,
    PriceCeilingExceeded,
    QueueFull,
    RateLimited,
    RetryableBackendError,
    RouteAttempt,
    UnknownVendor,
    UnusableOutput,
    UpstreamRateLimited,
    VendorAuthError,
    VendorNotFound,
    VendorOutOfCredit,
    VendorProtocolError,
    VendorRateLimited,
    VendorRejectedRequest,
    VendorTimeout,
    VendorUnavailable,
    retry_after_headers,
)

ERROR_CLASSES = [
    cls for _, cls in inspect.getmembers(core.errors, inspect.isclass)
    if issubclass(cls, BaseException) and cls.__module__ == core.errors.__name__
]


def drawn_tree() -> dict[str, str | None]:
    """Each class drawn in the module docstring, mapped to the class drawn as its parent."""
    doc = core.errors.__doc__ or ""
    lines = [line for line in doc.split("::", 1)[1].splitlines() if line.strip()]
    parents: dict[str, str | None] = {}
    open_at_depth: list[str] = []
    for line in lines:
        name_start = next(i for i, char in enumerate(line) if char.isalpha() or char == "`")
        if line[name_start] == "`":
            continue  # a continued explanation, not a class
        depth = (name_start - 4) // 4
        name = line[name_start:].split()[0]
        del open_at_depth[depth:]
        parents[name] = open_at_depth[-1] if open_at_depth else None
        open_at_depth.append(name)
    return parents


def test_the_tree_reader_reads_the_root_and_nesting() -> None:
    tree = drawn_tree()

    assert tree["BoltgateError"] is None
    assert tree["ClientError"] == "BoltgateError"
    assert tree["VendorUnavailable"] == "RetryableBackendError"
    assert tree["VendorRejectedRequest"] == "BackendError"


def test_the_module_holds_the_classes_the_issue_found_outside_it() -> None:
    names = {cls.__name__ for cls in ERROR_CLASSES}

    assert {"VendorNotFound", "JobAbandoned", "JobFailed", "QueueFull", "PipelineFailed", "NotReady",
            "CatalogError", "UnknownVendor"} <= names


@pytest.mark.parametrize("error_class", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_class_is_drawn_under_its_parent_in_the_docstring(error_class: type[BaseException]) -> None:
    tree = drawn_tree()

    assert error_class.__name__ in tree, f"{error_class.__name__} is missing from the docstring's tree"
    parent = tree[error_class.__name__]
    assert parent == (None if error_class is BoltgateError else error_class.__bases__[0].__name__)
    assert len(error_class.__bases__) == 1


def test_the_docstring_draws_no_class_the_module_lacks() -> None:
    assert set(drawn_tree()) == {cls.__name__ for cls in ERROR_CLASSES}


@pytest.mark.parametrize("error_class", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_class_descends_from_the_one_root(error_class: type[BaseException]) -> None:
    assert issubclass(error_class, BoltgateError)


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
    (KeyRateLimited, 429, "requests", "rate_limit_exceeded"),
    (UpstreamRateLimited, 429, "requests", "upstream_rate_limited"),
    (VendorUnavailable, 502, "server_error", "backend_error"),
    (PipelineFailed, 500, "server_error", "pipeline_failed"),
    (VendorNotFound, 502, "server_error", "backend_error"),
    (JobAbandoned, 502, "server_error", "backend_error"),
    (ConfigurationError, 500, "server_error", "configuration_error"),
    (CatalogError, 500, "server_error", "catalog_error"),
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
    (PipelineFailed, True, True, False, "unavailable"),
    (UnusableOutput, False, True, False, "unusable_output"),
    (VendorAuthError, False, True, True, "auth_error"),
    (VendorOutOfCredit, False, True, True, "out_of_credit"),
    (VendorNotFound, False, True, False, "not_found"),
    (JobAbandoned, False, True, False, "job_abandoned"),
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


@pytest.mark.parametrize("error_class", [cls for cls in ERROR_CLASSES if issubclass(cls, BackendError)],
                         ids=lambda cls: cls.__name__)
def test_a_backend_error_is_drawn_under_retryable_exactly_when_the_router_retries_it(
    error_class: type[BackendError],
) -> None:
    assert issubclass(error_class, RetryableBackendError) == error_class.retryable


@pytest.mark.parametrize(("error", "status", "code", "retry_after_header"), [
    (QueueFull("4 waiting", retry_after=1.2), 503, "queue_full", "2"),
    (NotReady("loading"), 503, "not_ready", "5"),
    (NotReady("failed to load", retry_after=60.0), 503, "not_ready", "60"),
])
def test_the_local_workers_refusals_say_when_to_come_back(
    error: BackendError, status: int, code: str, retry_after_header: str
) -> None:
    assert (error.status_code, error.code, error.status) == (status, code, 503)
    assert error.headers["retry-after"] == retry_after_header
    assert isinstance(error, VendorUnavailable) and error.retryable


def test_a_failed_job_carries_what_the_vendor_billed() -> None:
    error = JobFailed("job failed", billed=True, vendor_code="E1", run_seconds=2.5,
                      vendor_cost_usd=Decimal("0.004"))

    assert (error.billed, error.run_seconds, error.vendor_cost_usd) == (True, 2.5, Decimal("0.004"))
    assert (error.vendor_code, error.outcome, error.failover, error.retryable) == ("E1", "job_failed", True, False)


def test_a_failed_job_must_say_whether_it_was_billed() -> None:
    with pytest.raises(TypeError):
        JobFailed("job failed")  # type: ignore[call-arg]


@pytest.mark.parametrize("error_class", [cls for cls in ERROR_CLASSES if issubclass(cls, BackendError)
                                         and cls not in (QueueFull, JobFailed, UnusableOutput, AmbiguousCreate)],
                         ids=lambda cls: cls.__name__)
def test_every_backend_error_reports_no_cost_unless_told(error_class: type[BackendError]) -> None:
    error = error_class("vendor said no")

    assert (error.billed, error.run_seconds, error.vendor_cost_usd) == (False, None, None)


def test_any_backend_error_can_carry_a_vendors_bill() -> None:
    error = VendorUnavailable("502 after the job ran", billed=True, run_seconds=1.5, vendor_cost_usd=Decimal("0.01"))

    assert (error.billed, error.run_seconds, error.vendor_cost_usd) == (True, 1.5, Decimal("0.01"))


def test_an_unknown_vendor_names_itself_and_the_vendors_the_catalog_knows() -> None:
    error = UnknownVendor("acme", ["runflow", "eachlabs"])

    assert error.message == "no price for vendor 'acme'; the catalog lists runflow, eachlabs"
    assert (error.vendor, error.known, error.code) == ("acme", ["runflow", "eachlabs"], "unknown_vendor")
    assert isinstance(error, ConfigurationError)


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


@pytest.mark.parametrize(("seconds", "header", "millis"), [
    (2.0, "2", "2000"), (2.2, "3", "2200"), (0.0, "1", "1"), (0.0004, "1", "1"), (-5.0, "1", "1"),
])
def test_retry_after_is_whole_seconds_rounded_up_and_exact_milliseconds(
    seconds: float, header: str, millis: str
) -> None:
    assert retry_after_headers(seconds) == {"retry-after": header, "retry-after-ms": millis}


def test_every_rate_limit_and_every_no_backend_answer_says_when_to_come_back() -> None:
    for error in (KeyRateLimited("slow down"), UpstreamRateLimited("every vendor 429"),
                  NoBackendAvailable("nothing")):
        assert error.headers["retry-after"] == "1"
    assert NoBackendAvailable("nothing", retry_after=7.5).headers == {"retry-after": "8", "retry-after-ms": "7500"}
    assert RateLimited("x", retry_after=3, headers={"x-ratelimit-limit": "10"}).headers == {
        "retry-after": "3", "retry-after-ms": "3000", "x-ratelimit-limit": "10"}


def test_an_upstream_rate_limit_lists_attempts_like_no_backend_available() -> None:
    attempts = [RouteAttempt("a", "r1", "rate_limited", 429)]

    error = UpstreamRateLimited("Every route tried is rate-limiting", attempts, retry_after=4)

    assert error.message == "Every route tried is rate-limiting. attempts: a/r1: rate_limited 429"
    assert (error.attempts, error.retry_after) == (attempts, 4)


def test_an_idempotency_conflict_tells_the_sdk_not_to_retry() -> None:
    assert IdempotencyConflict("in progress").headers == {"x-should-retry": "false"}
    reused = IdempotencyConflict("reused", param="Idempotency-Key", code="idempotency_key_reused")
    assert (reused.code, reused.headers["x-should-retry"]) == ("idempotency_key_reused", "false")


def test_a_backend_error_says_what_the_vendor_billed() -> None:
    assert not VendorUnavailable("down").billed
    unusable = UnusableOutput("no known shape", run_seconds=1.5)
    assert unusable.billed and unusable.run_seconds == 1.5 and unusable.vendor_cost_usd is None
