"""Which failed creates may be sent again: only those that prove nothing started, unless the
vendor honours an idempotency key (then all but a 409)."""

from __future__ import annotations

import httpx
import pytest
import respx

from backends.vendors.create_safety import create_failure, started_nothing
from backends.vendors.registry import VENDOR_SPECS
from core.create_key import create_key_for_request
from core.deadline import Deadline
from core.errors import (
    AmbiguousCreate,
    BackendError,
    UnsafeVendorUrl,
    VendorBodyTooLarge,
    VendorProtocolError,
    VendorRateLimited,
    VendorRejectedRequest,
    VendorTimeout,
    VendorUnavailable,
    VendorUnreachable,
)
from core.request import ImageRequest
from tests.backends.vendors.conftest import MakeBackend

NO_KEY_VENDORS = sorted(name for name, spec in VENDOR_SPECS.items() if spec.idempotency_header is None)

NOTHING_STARTED = [
    VendorUnreachable("x.test unreachable (ClientConnectorError)"),
    UnsafeVendorUrl("refusing to send the route's key off its origin"),
    VendorProtocolError("a URL on x.test that we cannot call (InvalidURL)"),
    VendorRejectedRequest("vendor answered 422", status=422),
    VendorRateLimited("vendor answered 429", status=429),
    VendorTimeout("vendor answered 408", status=408),
    VendorUnavailable("vendor answered 409: refetch and retry", status=409),
]
ANSWER_LOST = [
    VendorTimeout("no complete answer within 5.00s from x.test (TimeoutError)"),
    VendorUnavailable("the exchange with x.test broke off (ServerDisconnectedError)"),
    VendorBodyTooLarge("x.test answered more than 100000 bytes"),
    VendorUnavailable("vendor answered 502", status=502),
    VendorUnavailable("vendor answered 504", status=504),
]


@pytest.mark.parametrize("vendor", sorted(VENDOR_SPECS))
@pytest.mark.parametrize("error", NOTHING_STARTED, ids=lambda error: error.message[:30])
def test_a_create_that_provably_started_nothing_keeps_its_own_error(vendor: str, error: BackendError) -> None:
    assert started_nothing(VENDOR_SPECS[vendor], error)
    if (vendor, error.status) != ("callmissed", 409):  # a 409 there answers a replayed key (below)
        assert create_failure(VENDOR_SPECS[vendor], error) is error


@pytest.mark.parametrize("vendor", NO_KEY_VENDORS)
@pytest.mark.parametrize("error", ANSWER_LOST, ids=lambda error: error.message[:30])
def test_a_lost_answer_at_a_vendor_without_idempotency_is_ambiguous(vendor: str, error: BackendError) -> None:
    failure = create_failure(VENDOR_SPECS[vendor], error)

    assert isinstance(failure, AmbiguousCreate)
    assert (failure.retryable, failure.failover, failure.billed) == (False, True, True)
    assert failure.status == error.status


@pytest.mark.parametrize("error", ANSWER_LOST, ids=lambda error: error.message[:30])
def test_at_callmissed_a_lost_answer_is_resent_under_the_same_key(error: BackendError) -> None:
    assert create_failure(VENDOR_SPECS["callmissed"], error) is error


def test_at_callmissed_a_409_to_a_create_is_ambiguous() -> None:
    conflict = VendorRejectedRequest("vendor answered 409 idempotency_key_reused", status=409)
    assert isinstance(create_failure(VENDOR_SPECS["callmissed"], conflict), AmbiguousCreate)


@pytest.mark.parametrize(("vendor", "status", "ambiguous"), [
    ("eachlabs", 500, False),  # "Failed to create prediction": not accepted, their docs say
    ("eachlabs", 502, True),
    ("eachlabs", 503, True),
    ("runflow", 500, True),  # "mutations are not idempotent by default"
    ("runflow", 503, True),
    ("aigateway", 500, True),
    ("imageapi", 500, True),
    ("worker", 500, False),  # our own worker: the batch failed, nothing runs on
    ("worker", 503, False),  # queue full or model loading
    ("worker", 502, True),
])
def test_a_5xx_is_not_started_only_where_the_vendor_documents_it(vendor: str, status: int, ambiguous: bool) -> None:
    failure = create_failure(VENDOR_SPECS[vendor], VendorUnavailable(f"vendor answered {status}", status=status))
    assert isinstance(failure, AmbiguousCreate) is ambiguous


async def test_callmissed_creates_carry_the_requests_key_on_every_retry(
    vendor_api: respx.MockRouter, make_backend: MakeBackend
) -> None:
    route = vendor_api.post("/v1/images/generations").mock(side_effect=httpx.ReadTimeout("lost"))
    backend = make_backend(VENDOR_SPECS["callmissed"])
    with create_key_for_request() as key:
        for _ in range(2):
            with pytest.raises(VendorTimeout):
                await backend.generate(ImageRequest(prompt="a cat", seed=3), Deadline(5))

    sent = [call.request for call in route.calls]
    assert [request.headers["idempotency-key"] for request in sent] == [key, key]
    assert sent[0].content == sent[1].content  # the same body: the vendor replays, never 409s


@pytest.mark.parametrize("vendor", NO_KEY_VENDORS)
async def test_vendors_without_a_documented_key_are_sent_none(
    vendor_api: respx.MockRouter, make_backend: MakeBackend, vendor: str
) -> None:
    route = vendor_api.route().mock(side_effect=httpx.ReadTimeout("lost"))
    with create_key_for_request(), pytest.raises(AmbiguousCreate):
        await make_backend(VENDOR_SPECS[vendor]).generate(ImageRequest(prompt="a cat"), Deadline(5))
    creates = [call.request for call in route.calls if call.request.method == "POST"]
    assert len(creates) == 1  # (Runflow then searches for its run: a GET)
    assert "idempotency-key" not in creates[0].headers
