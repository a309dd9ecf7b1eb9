"""Every example a vendor's documentation shows (``backends/vendors/contracts/``) is read by its
adapter the way the documentation means it, and the adapter sends nothing the vendor does not
document."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from backends.vendors import contracts
from backends.vendors.backend import VendorBackend
from backends.vendors.contracts import ContractExample, shape
from backends.vendors.messages import HttpAnswer
from backends.vendors.registry import VENDOR_SPECS
from backends.vendors.runflow import image_urls
from backends.vendors.spec import VendorSpec
from core.errors import UnusableOutput
from core.request import ImageRequest

EXTERNAL = sorted(name for name, spec in VENDOR_SPECS.items() if spec.facts.default_base_url)
"""The vendors we do not write ourselves (the GPU worker's contract is our own code)."""
EXAMPLES = [example for vendor in EXTERNAL for example in contracts.examples(vendor)]


def example_id(example: ContractExample) -> str:
    return f"{example.vendor}/{example.name}"


def answer(example: ContractExample) -> HttpAnswer:
    """The example as the transport hands it over (header names in lower case)."""
    headers = {name.lower(): value for name, value in example.headers.items()}
    return HttpAnswer(example.status or 200, headers, orjson.dumps(example.body))


def backend(spec: VendorSpec) -> VendorBackend:
    return VendorBackend(spec, region="r", base_url="https://vendor.test", api_key="k")


@pytest.mark.parametrize("vendor", EXTERNAL)
def test_every_vendor_keeps_its_documented_examples(vendor: str) -> None:
    found = contracts.examples(vendor)
    assert any(example.role == "request" for example in found), vendor
    assert all(example.source for example in found)
    assert [example.role for example in found].count("retries") == 1, vendor


@pytest.mark.parametrize("example", EXAMPLES, ids=example_id)
def test_the_adapter_reads_each_example_as_documented(example: ContractExample) -> None:
    spec = VENDOR_SPECS[example.vendor]
    if example.role == "request":
        assert isinstance(example.body, dict) and example.body
    elif example.role == "create":
        assert spec.job is not None
        assert spec.job.job_id(answer(example)) == example.expect
    elif example.role == "poll":
        assert spec.job is not None
        if example.expect == "shape":
            return  # a reference example with placeholder values: its shape is what counts
        state = spec.job.read_state(answer(example))
        assert state.phase == example.expect
        if example.billed is not None:
            assert state.billed is example.billed
    elif example.role == "statuses":
        assert spec.job is not None
        for status, phase in example.statuses.items():
            assert _phase_of(spec, status) == phase, status
    elif example.role == "output":
        assert image_urls(example.body) == example.expect
    elif example.role == "answer":
        assert spec.parse_output is not None
        output = spec.parse_output(answer(example))
        assert (output.b64_images if example.expect == "b64" else output.image_urls)
    elif example.role == "cancel":
        assert spec.job is not None and spec.job.cancel is not None
        assert answer(example).status < 300
    elif example.role == "retries":
        assert spec.idempotency_header == example.expect["idempotency_header"]
        assert sorted(spec.create_not_started) == example.expect["create_not_started"]
        assert example.body and all(isinstance(line, str) for line in example.body)
    elif example.role == "error":
        error = backend(spec).classify(answer(example))
        assert type(error).__name__ == example.expect
        assert error.status == example.status
        documented_wait = answer(example).headers.get("retry-after")  # none documented: the router's backoff
        assert error.retry_after == (float(documented_wait) if documented_wait else None)
    else:
        pytest.fail(f"unknown role {example.role!r} in {example_id(example)}")


def _phase_of(spec: VendorSpec, status: str) -> str:
    assert spec.job is not None
    key = "status_code" if spec.name == "runflow" else "status"
    body: dict[str, Any] = {"id": "x", key: status, "output": None}
    try:
        return spec.job.read_state(HttpAnswer(200, {}, orjson.dumps(body))).phase
    except UnusableOutput:
        return "succeeded"  # a success whose (here empty) output is then read


def _requests() -> list[tuple[str, ImageRequest]]:
    """Per vendor, the fullest text-to-image request its capabilities take."""
    cases = []
    for vendor in EXTERNAL:
        caps = VENDOR_SPECS[vendor].capabilities
        fields: dict[str, Any] = {"prompt": "a glass teapot", "n": caps.max_n, "width": 768, "height": 512}
        if caps.seed:
            fields["seed"] = 7
        if caps.steps:
            fields["steps"] = min(caps.max_steps, 8)
        if caps.negative_prompt:
            fields["negative_prompt"] = "blurry"
        if caps.guidance:
            fields["guidance_scale"] = 1.5
        request = ImageRequest(**fields)
        assert caps.refusal(request) is None
        cases.append((vendor, request))
    return cases


@pytest.mark.parametrize(("vendor", "request_"), _requests(), ids=lambda case: case if isinstance(case, str) else "")
def test_the_adapter_sends_only_documented_fields(vendor: str, request_: ImageRequest) -> None:
    spec = VENDOR_SPECS[vendor]
    documented: set[str] = set()
    for example in contracts.examples(vendor):
        if example.role == "request":
            documented |= shape(example.body) | set(example.optional)
    sent = shape(spec.build_request(request_, spec.default_options).json)
    assert sent <= documented, f"{vendor} sends undocumented {sorted(sent - documented)}"
