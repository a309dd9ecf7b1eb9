"""The registry is the one list of vendors: settings, prices and the demo read their facts from it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from backends.simulators.vendors import SPECS as SIMULATED
from backends.vendors.registry import VENDOR_SPECS
from pricing.catalog import PriceCatalog
from pricing.config import PricingConfig
from proxy.settings import RouteConfig


def test_each_spec_is_filed_under_its_name() -> None:
    assert all(spec.name == name for name, spec in VENDOR_SPECS.items())


def test_each_spec_either_answers_at_once_or_is_polled() -> None:
    for spec in VENDOR_SPECS.values():
        assert (spec.parse_output is None) != (spec.job is None), spec.name


@pytest.mark.parametrize("vendor", list(VENDOR_SPECS))
def test_a_route_may_name_any_registered_vendor_and_gets_its_facts(vendor: str) -> None:
    spec = VENDOR_SPECS[vendor]
    route = RouteConfig(vendor=vendor, regions=[] if spec.facts.default_base_url else
                        [{"name": "r", "base_url": "http://w:9000"}])  # type: ignore[list-item]
    assert route.key_variable == spec.facts.key_env
    if spec.facts.default_base_url:
        assert route.regions[0].base_url == spec.facts.default_base_url


def test_a_route_naming_an_unknown_vendor_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValidationError, match=r"unknown vendor 'runflw'.*runflow"):
        RouteConfig(vendor="runflw")


@pytest.mark.parametrize("vendor", list(VENDOR_SPECS))
def test_each_vendors_price_entry_is_in_the_catalog(vendor: str) -> None:
    PriceCatalog.load(PricingConfig()).price(VENDOR_SPECS[vendor].facts.price_key)


def test_every_vendor_in_the_demo_has_a_simulator() -> None:
    in_demo = {name for name, spec in VENDOR_SPECS.items() if spec.facts.demo_priority is not None}
    assert in_demo == set(SIMULATED)


@pytest.mark.parametrize("vendor", list(VENDOR_SPECS))
def test_each_vendor_lists_what_is_confirmed_and_what_is_assumed(vendor: str) -> None:
    behaviours = VENDOR_SPECS[vendor].behaviours
    assert any(behaviour.confirmed for behaviour in behaviours)
    assert all(behaviour.what for behaviour in behaviours)
