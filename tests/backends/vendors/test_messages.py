"""The plain values between adapters and the transport, and the readers adapters share."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from backends.vendors.messages import HttpAnswer, nsfw_flagged, reported_usd, require
from core.errors import VendorProtocolError


def test_a_body_that_is_not_json_is_a_protocol_error_naming_it() -> None:
    with pytest.raises(VendorProtocolError, match="Bad Gateway"):
        HttpAnswer(502, {}, b"<h1>Bad Gateway</h1>").json()


def test_require_returns_a_field_of_the_right_kind() -> None:
    assert require({"id": "a"}, "id", str, "run") == "a"


@pytest.mark.parametrize("mapping", [{"id": 1}, {}, ["id"], None])
def test_require_never_invents_a_field(mapping: Any) -> None:
    with pytest.raises(VendorProtocolError, match="run: expected 'id'"):
        require(mapping, "id", str, "run")


@pytest.mark.parametrize(
    ("value", "usd"),
    [
        ("0.003", Decimal("0.003")),
        (" 0.0031 ", Decimal("0.0031")),
        (0.0032, Decimal("0.0032")),
        (2, Decimal(2)),
        (None, None),
        ("$0.003", None),
        ("NaN", None),
        (True, None),
        ({"usd": 1}, None),
    ],
)
def test_reported_costs_are_exact_or_absent(value: Any, usd: Decimal | None) -> None:
    assert reported_usd(value, "cost") == usd


@pytest.mark.parametrize(
    ("mapping", "flagged"),
    [
        ({"nsfw_content_detected": [False, True]}, True),
        ({"nsfw_content_detected": True}, True),
        ({"nsfw_content_detected": [False]}, False),
        ({"nsfw_content_detected": "yes"}, False),
        ({}, False),
        (None, False),
    ],
)
def test_the_nsfw_flag_is_read_only_where_present(mapping: Any, flagged: bool) -> None:
    assert nsfw_flagged(mapping) is flagged
