"""The gateway serves one request end to end: route, honour the format, store or inline, say how."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections import deque
from dataclasses import replace
from decimal import Decimal

import pytest

from backends.base import BackendResult, GeneratedImage, sniff_format
from core.create_key import create_key_for_client_key
from core.errors import (
    IdempotencyConflict,
    KeptChargeUnreadable,
    NoBackendAvailable,
    ReservationReleased,
    StateUnavailable,
    UnsupportedRequest,
    UnusableOutput,
    VendorUnavailable,
)
from core.request import ImageRequest
from core.state.ledger_store import Balance, HoldState, LedgerStore
from pricing.ledger import Ledger
from pricing.money import to_micro_usd
from proxy.billing import ANONYMOUS, Charge, PendingCharge
from proxy.gateway import Gateway
from proxy.routing.route import Route
from proxy.settings import OutboundConfig, Settings
from proxy.wiring import Stores, assemble_gateway
from tests.proxy.images.samples import encode
from tests.proxy.routing.scripted_backend import NO_BACKOFF, ScriptedBackend, noisy_png, route_to
from tests.state_clock import StateClock

BASE_URL = "http://gateway.test/"


def gateway(routes: list[Route], public_base_url: str | None = None,
            outbound: OutboundConfig | None = None) -> Gateway:
    """The gateway as the app wires it, over ``routes``; retries do not wait."""
    settings = Settings(simulators="off", retry=NO_BACKOFF, deadline_s=5, public_base_url=public_base_url,
                        api_keys={}, require_api_key=False, outbound=outbound or OutboundConfig())
    return assemble_gateway(settings, Stores.in_memory(), routes)


def request(**fields: object) -> ImageRequest:
    return ImageRequest.model_validate({"prompt": "a harbour at night", "seed": 31, "width": 256, "height": 256,
                                        **fields})


async def test_a_backend_without_a_seed_field_claims_no_seed() -> None:
    """A vendor that has no seed field drew its own: the answer does not pretend it used ours."""
    from backends.base import Capabilities

    served = gateway([route_to(ScriptedBackend("aigateway", capabilities=Capabilities(seed=False)))])

    unseeded = ImageRequest(prompt="a harbour at night", width=256, height=256)  # the gateway draws one
    answer = await served.generate(unseeded, base_url=BASE_URL, key=ANONYMOUS)

    assert "seed" not in answer.body
    assert "x-boltgate-seed" not in answer.headers


async def test_url_images_are_stored_and_linked_under_the_callers_base_url() -> None:
    served = gateway([route_to(ScriptedBackend("runflow", "eu"))])

    answer = await served.generate(request(n=2), base_url=BASE_URL, key=ANONYMOUS)

    urls = [item["url"] for item in answer.body["data"]]
    assert len(urls) == 2
    for url in urls:
        assert url.startswith("http://gateway.test/v1/images/files/")
        assert url.endswith(".png")
        stored = await served.images.get(url.rsplit("/", 1)[1])
        assert stored is not None and sniff_format(stored[:16]) == "png"
    assert [item["revised_prompt"] for item in answer.body["data"]] == ["a harbour at night"] * 2


async def test_the_public_base_url_wins_over_the_callers() -> None:
    served = gateway([route_to(ScriptedBackend("runflow"))], public_base_url="https://img.example.com/")

    answer = await served.generate(request(), base_url=BASE_URL, key=ANONYMOUS)

    assert answer.body["data"][0]["url"].startswith("https://img.example.com/v1/images/files/")


async def test_the_body_echoes_size_seed_and_format() -> None:
    answer = await gateway([route_to(ScriptedBackend("runflow"))]).generate(
        request(output_format="webp"), base_url=BASE_URL, key=ANONYMOUS)

    assert answer.body["size"] == "256x256"
    assert answer.body["seed"] == 31
    assert answer.body["output_format"] == "webp"
    assert isinstance(answer.body["created"], int)


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
async def test_the_requested_output_format_is_delivered(fmt: str) -> None:
    served = gateway([route_to(ScriptedBackend("runflow"))])

    answer = await served.generate(request(output_format=fmt, response_format="b64_json"), base_url=BASE_URL,
                                   key=ANONYMOUS)

    assert sniff_format(base64.b64decode(answer.body["data"][0]["b64_json"])[:16]) == fmt


def serving(image: bytes, max_image_pixels: int) -> Gateway:
    backend = ScriptedBackend("runflow", script=deque([BackendResult(images=[GeneratedImage(data=image)])]))
    return gateway([route_to(backend)], outbound=OutboundConfig(max_image_pixels=max_image_pixels))


async def test_an_image_past_the_default_pixel_cap_is_converted_when_the_operator_raised_the_cap() -> None:
    grey = encode("PNG", side=4097, mode="L", flat=(128,))  # 4097 x 4097 > 4096 x 4096, yet only 16 kB
    served = serving(grey, max_image_pixels=4097 * 4097)

    answer = await served.generate(request(output_format="jpeg", response_format="b64_json"), base_url=BASE_URL,
                                   key=ANONYMOUS)

    assert sniff_format(base64.b64decode(answer.body["data"][0]["b64_json"])[:16]) == "jpeg"


async def test_an_image_past_a_lowered_pixel_cap_is_not_decoded_to_convert() -> None:
    served = serving(encode("PNG", side=64, mode="L"), max_image_pixels=64 * 64 - 1)

    with pytest.raises(UnusableOutput, match="more than 4095 pixels"):
        await served.generate(request(output_format="jpeg"), base_url=BASE_URL, key=ANONYMOUS)


async def test_base64_from_the_vendor_passes_through_to_a_base64_client_untouched() -> None:
    text = base64.b64encode(noisy_png()).decode()
    image = GeneratedImage(b64=text)
    vendor = ScriptedBackend.playing("aigateway", BackendResult(images=[image]))

    answer = await gateway([route_to(vendor)]).generate(request(response_format="b64_json"), base_url=BASE_URL,
                                                         key=ANONYMOUS)

    assert answer.body["data"][0]["b64_json"] is text
    assert image._data is None  # never decoded, never re-encoded


async def test_no_more_than_n_images_are_delivered() -> None:
    generous = ScriptedBackend.playing("runflow", BackendResult(images=[GeneratedImage(data=noisy_png())] * 3))

    answer = await gateway([route_to(generous)]).generate(request(n=2), base_url=BASE_URL, key=ANONYMOUS)

    assert len(answer.body["data"]) == 2


async def test_the_headers_name_backend_region_attempts_and_seed() -> None:
    flaky = ScriptedBackend.playing("runflow", VendorUnavailable("down", status=503), region="eu")

    answer = await gateway([route_to(flaky)]).generate(request(), base_url=BASE_URL, key=ANONYMOUS)

    assert answer.headers["x-boltgate-backend"] == "runflow"
    assert answer.headers["x-boltgate-region"] == "eu"
    assert answer.headers["x-boltgate-attempts"] == "2"
    assert answer.headers["x-boltgate-seed"] == "31"


async def test_the_attempts_that_failed_before_the_serving_route_are_named() -> None:
    """The playground shows a failover from this header: route, outcome and status of each."""
    down = ScriptedBackend.playing("runflow", VendorUnavailable("down", status=503), region="eu")
    healthy = ScriptedBackend("eachlabs", region="us")

    answer = await gateway([route_to(down, priority=10, max_attempts=1), route_to(healthy, priority=20)]).generate(
        request(), base_url=BASE_URL, key=ANONYMOUS)

    assert answer.headers["x-boltgate-backend"] == "eachlabs"
    assert answer.headers["x-boltgate-failed-attempts"] == "runflow/eu unavailable 503"


async def test_a_request_served_at_the_first_try_names_no_failed_attempt() -> None:
    answer = await gateway([route_to(ScriptedBackend("runflow"))]).generate(request(), base_url=BASE_URL,
                                                                            key=ANONYMOUS)

    assert "x-boltgate-failed-attempts" not in answer.headers


async def test_a_request_no_route_can_serve_fails_before_any_backend_is_called() -> None:
    text_only = ScriptedBackend("runflow")

    with pytest.raises(UnsupportedRequest) as raised:
        await gateway([route_to(text_only)]).generate(request(init_image=noisy_png()), base_url=BASE_URL,
                                                      key=ANONYMOUS)

    assert "no image-to-image" in raised.value.message
    assert text_only.calls == []


async def test_an_idempotency_key_replays_the_first_answer_without_a_second_generation() -> None:
    vendor = ScriptedBackend("runflow")
    served = gateway([route_to(vendor)])

    first = await served.generate(request(), base_url=BASE_URL, key=ANONYMOUS, idempotency_key="order-1")
    again = await served.generate(request(), base_url=BASE_URL, key=ANONYMOUS, idempotency_key="order-1")

    assert len(vendor.calls) == 1
    assert again.body == first.body
    assert again.headers["x-boltgate-idempotent-replay"] == "true"
    assert "x-boltgate-idempotent-replay" not in first.headers


async def test_a_resent_idempotent_request_carries_the_same_create_key_to_its_vendor() -> None:
    """The first try was lost (here: it failed and its claim was released, as when a worker dies
    mid-request); the client's resend with the same Idempotency-Key reaches the vendor under the
    same create key, so a vendor that honours keys replays instead of running a second create.
    Another client key, or another owner, gets another create key."""
    vendor = ScriptedBackend("callmissed", script=deque([VendorUnavailable("lost")]))
    served = gateway([route_to(vendor, max_attempts=1)])

    with pytest.raises(NoBackendAvailable):
        await served.generate(request(), base_url=BASE_URL, key=ANONYMOUS, idempotency_key="order-7")
    await served.generate(request(), base_url=BASE_URL, key=ANONYMOUS, idempotency_key="order-7")
    await served.generate(request(), base_url=BASE_URL, key=ANONYMOUS, idempotency_key="order-8")
    await served.generate(request(), base_url=BASE_URL, key=ANONYMOUS)

    first, resent, other, unkeyed = vendor.create_keys
    assert first is not None and first == resent
    assert first == create_key_for_client_key(ANONYMOUS.key_id, "order-7")
    assert len({first, other, unkeyed}) == 3
    assert create_key_for_client_key("another-owner", "order-7") != first
    assert "order-7" not in first  # the client's key is not sent to vendors as it is


def forget_answers(monkeypatch: pytest.MonkeyPatch, fault: BaseException) -> None:
    """Remembering an answer for replays raises ``fault`` once: a state store down at that
    moment (``StateUnavailable``), or the process killed there (``CancelledError`` stands for it:
    nothing after it runs)."""
    faults = [fault]

    async def forgetful(ledger: Ledger, api_key: str, idempotency_key: str, payload: bytes, ttl: float) -> None:
        if faults:
            raise faults.pop()
        await remember(ledger, api_key, idempotency_key, payload, ttl)

    remember = Ledger.remember_response
    monkeypatch.setattr(Ledger, "remember_response", forgetful)


async def test_a_charged_answer_that_could_not_be_kept_is_refused_on_retry_never_generated_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The store was down just when the answer was to be remembered: the client got its images;
    a retry under the key, a minute or hours later, is told so (409) instead of being generated
    and charged a second time."""
    clock = StateClock(monkeypatch)
    vendor = ScriptedBackend("runflow")
    served = gateway([route_to(vendor)])
    forget_answers(monkeypatch, StateUnavailable("the state store did not answer"))

    first = await served.generate(request(), base_url=BASE_URL, key=ANONYMOUS, idempotency_key="order-9")
    refused = []
    for later_s in (served.deadline_s + 61, 6 * 3600):
        clock.advance(later_s)
        with pytest.raises(IdempotencyConflict) as conflict:
            await served.generate(request(), base_url=BASE_URL, key=ANONYMOUS, idempotency_key="order-9")
        refused.append(conflict.value)

    assert first.body["data"] and len(vendor.calls) == 1
    assert {error.code for error in refused} == {"idempotent_answer_unavailable"}
    assert "charged" in refused[0].message and "new Idempotency-Key" in refused[0].message


async def test_a_process_killed_after_the_charge_leaves_its_key_refusing_a_second_generation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Killed between the charge and remembering the answer: what it leaves behind (the claim)
    is enough. While it could still be running a retry is "still in progress"; after, the answer
    is unavailable; never a second generation."""
    clock = StateClock(monkeypatch)
    vendor = ScriptedBackend("runflow")
    served = gateway([route_to(vendor)])
    forget_answers(monkeypatch, asyncio.CancelledError())

    with pytest.raises(asyncio.CancelledError):
        await served.generate(request(), base_url=BASE_URL, key=ANONYMOUS, idempotency_key="order-10")
    with pytest.raises(IdempotencyConflict) as running:
        await served.generate(request(), base_url=BASE_URL, key=ANONYMOUS, idempotency_key="order-10")
    clock.advance(served.deadline_s + 61)
    with pytest.raises(IdempotencyConflict) as ended:
        await served.generate(request(), base_url=BASE_URL, key=ANONYMOUS, idempotency_key="order-10")

    assert "in progress" in running.value.message and ended.value.code == "idempotent_answer_unavailable"
    assert len(vendor.calls) == 1


async def test_a_request_still_running_under_the_key_is_in_progress_and_another_body_is_reused() -> None:
    vendor = ScriptedBackend("runflow", script=deque(["hang"]))
    served = gateway([route_to(vendor)])
    running = asyncio.create_task(served.generate(request(), base_url=BASE_URL, key=ANONYMOUS,
                                                  idempotency_key="order-11"))
    async with asyncio.timeout(5):
        while not vendor.calls:
            await asyncio.sleep(0.01)

    with pytest.raises(IdempotencyConflict) as twin:
        await served.generate(request(), base_url=BASE_URL, key=ANONYMOUS, idempotency_key="order-11")
    with pytest.raises(IdempotencyConflict) as other:
        await served.generate(request(prompt="a boat"), base_url=BASE_URL, key=ANONYMOUS,
                              idempotency_key="order-11")
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running

    assert "in progress" in twin.value.message
    assert other.value.code == "idempotency_key_reused"


def test_a_route_without_a_price_is_refused_at_start() -> None:
    from core.errors import UnknownVendor
    from core.state.memory import MemoryStateStore
    from core.state.memory_ledger import MemoryLedgerStore
    from pricing.config import PricingConfig
    from proxy.billing import Billing

    billing = Billing(MemoryLedgerStore(), MemoryStateStore(), PricingConfig(), {}, require_key=False)
    billing.check_priced(["callmissed", "worker", "local"])  # workers are priced as our own GPUs
    with pytest.raises(UnknownVendor):
        billing.check_priced(["acme"])


def test_a_hedge_that_lost_the_race_is_not_a_failed_attempt() -> None:
    """The loser of a hedge is cancelled, not failed: only real failures are named."""
    from backends.base import BackendResult
    from core.errors import RouteAttempt
    from proxy.gateway import served_headers
    from proxy.routing.attempts import RoutedResult

    fast = route_to(ScriptedBackend("eachlabs", region="us"))
    routed = RoutedResult(result=BackendResult(images=[]), route=fast, hedged_to=fast, attempts=[
        RouteAttempt("runflow", "eu", "timeout", None),
        RouteAttempt("runflow", "eu", "cancelled", detail="lost the race"),
        RouteAttempt("eachlabs", "us", "ok", 200),
    ])

    headers = served_headers(routed, request())

    assert headers["x-boltgate-failed-attempts"] == "runflow/eu timeout"
    assert headers["x-boltgate-hedged-to"] == "eachlabs/us"


def gateway_and_book(routes: list[Route]) -> tuple[Gateway, LedgerStore]:
    """``gateway(routes)`` and the ledger store it keeps its money in."""
    settings = Settings(simulators="off", retry=NO_BACKOFF, deadline_s=5, api_keys={}, require_api_key=False)
    stores = Stores.in_memory()
    return assemble_gateway(settings, stores, routes), stores.book


async def test_a_jobs_charge_is_kept_before_its_settle_is_sent_and_is_what_is_charged() -> None:
    served, book = gateway_and_book([route_to(ScriptedBackend("runflow"))])
    kept: list[tuple[PendingCharge, HoldState]] = []

    async def keep(pending: PendingCharge) -> PendingCharge:
        kept.append((pending, await served.billing.ledger.hold_state(pending.settlement.reservation)))
        return pending

    answer = await served.generate(request(), base_url=BASE_URL, key=ANONYMOUS, keep_charge=keep)

    [(pending, state_when_kept)] = kept
    assert state_when_kept is HoldState.OPEN
    assert (await book.balance(ANONYMOUS.key_id)).spent == pending.settlement.micro_usd > 0
    assert answer.body["billing"] == pending.charge.billing()


async def test_a_charge_that_could_not_be_kept_is_never_sent_and_the_request_fails_uncharged() -> None:
    served, book = gateway_and_book([route_to(ScriptedBackend("runflow"))])

    async def keep_fails(pending: PendingCharge) -> PendingCharge:
        raise StateUnavailable("the state store did not answer")

    with pytest.raises(StateUnavailable):
        await served.generate(request(), base_url=BASE_URL, key=ANONYMOUS, keep_charge=keep_fails)

    assert await book.balance(ANONYMOUS.key_id) == Balance(spent=0, held=0)
    assert await book.charges(since=0) == []


async def test_a_charge_that_could_not_be_kept_books_its_vendor_as_a_loss_once_with_the_holds_take_back() -> None:
    """The vendor was paid and the client is not charged: the gateway's loss. The keep may have
    landed with its answer lost, so the job's end may take that same charge back later: that
    books nothing more (one generation, one loss)."""
    served, book = gateway_and_book([route_to(ScriptedBackend("runflow"))])
    tried: list[PendingCharge] = []

    async def keep_fails(pending: PendingCharge) -> PendingCharge:
        tried.append(pending)
        raise StateUnavailable("the state store did not answer")

    with pytest.raises(StateUnavailable):
        await served.generate(request(), base_url=BASE_URL, key=ANONYMOUS, keep_charge=keep_fails)
    [pending] = tried
    booked = await book.table("losses:vendor_usd")
    await served.billing.take_back(pending)  # the job's end, finding it kept

    assert booked == {"runflow": to_micro_usd(pending.charge.upstream_usd)} != {"runflow": 0}
    assert await book.table("losses:vendor_usd") == booked
    assert await book.table("losses:vendor_attempts") == {"runflow": 1}


async def test_a_run_whose_keep_finds_another_runs_charge_unreadable_books_its_own_vendor_as_a_loss_of_its_own(
) -> None:
    """The charge kept is certainly the other run's: when the job's end takes that one back, its
    generation is a loss too, beside this run's (two generations billed, none paid)."""
    served, book = gateway_and_book([route_to(ScriptedBackend("runflow"))])
    ledger, asked = served.billing.ledger, request()
    reservation = await ledger.reserve(ANONYMOUS.key_id, Decimal("1"), None, lease_s=60)
    other_vendor = served.billing.quote("eachlabs", asked)
    other_run = PendingCharge(Charge(other_vendor), ledger.settlement(reservation, other_vendor))

    async def unreadable(pending: PendingCharge) -> PendingCharge:
        raise KeptChargeUnreadable("the other run's charge cannot be read")

    with pytest.raises(KeptChargeUnreadable):
        await served.generate(asked, base_url=BASE_URL, key=ANONYMOUS, keep_charge=unreadable,
                              reservation=reservation)
    await served.billing.take_back(other_run)

    assert await book.table("losses:vendor_attempts") == {"runflow": 1, "eachlabs": 1}
    assert await book.balance(ANONYMOUS.key_id) == Balance(spent=0, held=0)


async def test_a_job_runs_settle_that_finds_its_hold_closed_books_its_vendor_as_a_loss_once() -> None:
    """Closed without a charge (the job's cancel released it before the charge was kept): the
    charge can never land, so its vendor cost is the gateway's loss. The job's end finds the next
    hold current and takes nothing back there; were it to take this charge back, it books nothing
    more."""
    served, book = gateway_and_book([route_to(ScriptedBackend("runflow"))])
    ledger, asked = served.billing.ledger, request()
    reservation = await ledger.reserve(ANONYMOUS.key_id, Decimal("1"), None, lease_s=60)
    kept: list[PendingCharge] = []

    async def keep_then_closed(pending: PendingCharge) -> PendingCharge:
        kept.append(pending)
        await ledger.release(reservation)
        return pending

    with pytest.raises(ReservationReleased):
        await served.generate(asked, base_url=BASE_URL, key=ANONYMOUS, keep_charge=keep_then_closed,
                              reservation=reservation)
    [pending] = kept
    booked = await book.table("losses:vendor_usd")
    await served.billing.take_back(pending)

    assert booked == {"runflow": to_micro_usd(pending.charge.upstream_usd)}
    assert await book.table("losses:vendor_attempts") == {"runflow": 1}
    assert await book.balance(ANONYMOUS.key_id) == Balance(spent=0, held=0)


async def test_a_charge_another_run_of_the_job_kept_first_is_the_one_settled_and_this_runs_vendor_a_loss() -> None:
    """Two runs of one job alive at once, the other served by a pricier vendor: this run settles
    the charge the other kept for the hold (the one that can land), answers with that charge, and
    what its own vendor cost is the gateway's loss."""
    served, book = gateway_and_book([route_to(ScriptedBackend("runflow"))])
    ledger, asked = served.billing.ledger, request()
    reservation = await ledger.reserve(ANONYMOUS.key_id, Decimal("1"), None, lease_s=60)
    other_vendor = served.billing.quote("eachlabs", asked)
    assert other_vendor.client_usd != served.billing.quote("runflow", asked).client_usd
    other_run = PendingCharge(Charge(other_vendor), ledger.settlement(reservation, other_vendor))
    own: list[PendingCharge] = []

    async def kept_by_the_other_run(pending: PendingCharge) -> PendingCharge:
        own.append(pending)
        return other_run

    answer = await served.generate(asked, base_url=BASE_URL, key=ANONYMOUS, keep_charge=kept_by_the_other_run,
                                   reservation=reservation)

    assert answer.body["billing"] == other_run.charge.billing()
    assert (await book.balance(ANONYMOUS.key_id)).spent == other_run.settlement.micro_usd
    assert await book.table("losses:vendor_usd") == {"runflow": to_micro_usd(own[0].charge.upstream_usd)}


async def test_a_run_again_on_a_hold_an_earlier_run_settled_sends_nothing_and_books_its_vendor_as_a_loss(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Paid for already: no settle is sent (so none can go unconfirmed and have the earlier charge
    voided with this run's amounts), no charge is kept, and this run's vendor cost is a loss."""
    served, book = gateway_and_book([route_to(ScriptedBackend("runflow"))])
    ledger, asked = served.billing.ledger, request()
    reservation = await ledger.reserve(ANONYMOUS.key_id, Decimal("0.01"), None, lease_s=60)
    await ledger.settle(reservation, served.billing.quote("runflow", asked))
    spent, logged = await book.balance(ANONYMOUS.key_id), await book.charges(since=0)

    async def unanswered(*_: object, **__: object) -> None:
        raise StateUnavailable("the state store did not answer")

    monkeypatch.setattr(book, "settle", unanswered)
    kept: list[PendingCharge] = []

    async def keep(pending: PendingCharge) -> PendingCharge:
        kept.append(pending)
        return pending

    answer = await served.generate(asked, base_url=BASE_URL, key=ANONYMOUS, keep_charge=keep,
                                   reservation=replace(reservation, settled_before=True))

    assert answer.body["data"] and kept == []
    assert await book.balance(ANONYMOUS.key_id) == spent
    assert await book.charges(since=0) == logged
    assert served.unconfirmed.owed == 0
    upstream = served.billing.quote("runflow", asked).upstream_usd
    assert await book.table("losses:vendor_usd") == {"runflow": to_micro_usd(upstream)}
