"""Every vendor the settings can name has exactly one spec, filed under its own name."""

from __future__ import annotations

from typing import get_args

from backends.vendors.registry import VENDOR_SPECS
from proxy.settings import VendorName


def test_every_remote_vendor_in_the_settings_has_a_spec() -> None:
    assert set(VENDOR_SPECS) == set(get_args(VendorName)) - {"local"}


def test_each_spec_is_filed_under_its_name() -> None:
    assert all(spec.name == name for name, spec in VENDOR_SPECS.items())


def test_each_spec_either_answers_at_once_or_is_polled() -> None:
    for spec in VENDOR_SPECS.values():
        assert (spec.parse_output is None) != (spec.job is None), spec.name
