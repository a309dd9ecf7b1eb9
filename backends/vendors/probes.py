"""How each vendor is health-probed without paying for a generation, with the source of each.

A probe is one request that costs nothing: the vendor's models, status or account endpoint
where its documentation shows one (those that take our key also tell whether the key works),
otherwise a ``HEAD`` of the base URL, which only says the vendor answers. The verdict is read
from the status alone:

- 2xx passes; 429 passes too (the vendor answers; rate limiting is not an outage);
- 401/402/403 on an endpoint that checks our key: the key or credit (402) is refused;
- a reachability probe (``HEAD``) passes on any answer below 500;
- anything else (5xx, another 4xx, no answer in time) fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from backends.base import ProbeOutcome
from backends.vendors.spec import Options


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    method: str
    path: Callable[[Options], str]
    checks_key: bool
    """The endpoint takes our key and refuses a bad one (401/402/403)."""
    source: str
    """Where the endpoint is documented, or why it is assumed."""

    def verdict(self, status: int, seconds: float) -> ProbeOutcome:
        detail = f"{self.method} answered {status}"
        if 200 <= status < 300 or status == 429:
            return ProbeOutcome(True, detail, seconds, verifies_key=self.checks_key and status != 429)
        if self.checks_key and status in (401, 402, 403):
            return ProbeOutcome(False, detail, seconds, key_refused=True, payment_refused=status == 402)
        if self.method == "HEAD" and status < 500:
            return ProbeOutcome(True, detail, seconds)
        return ProbeOutcome(False, detail, seconds)


def _fixed(path: str) -> Callable[[Options], str]:
    return lambda _options: path


PROBES: dict[str, ProbeSpec] = {
    "callmissed": ProbeSpec(
        "HEAD", _fixed("/"), checks_key=False,
        source="assumed: CallMissed's stored docs show no models, status or balance endpoint for API keys "
               "(key management at /api/v1/keys takes a dashboard JWT), so a HEAD of the base URL",
    ),
    "runflow": ProbeSpec(
        "GET", lambda options: f"/v1/models/{options['model_path'].strip('/')}", checks_key=True,
        source="docs.runflow.io/api-reference/models/get-model-by-owner-and-slug: "
               "GET /v1/models/{owner}/{id} with the bearer key",
    ),
    "eachlabs": ProbeSpec(
        "GET", _fixed("/v1/models?limit=1"), checks_key=False,
        source="eachlabs/mintlify-docs api/overview.mdx: the model catalog (GET /v1/models) is public, "
               "so it says the API answers, not that our key works",
    ),
    "imageapi": ProbeSpec(
        "HEAD", _fixed("/"), checks_key=False,
        source="assumed: imageapi.org documents only its generate endpoint publicly",
    ),
    "aigateway": ProbeSpec(
        "GET", _fixed("/v1/balance"), checks_key=True,
        source="aigateway-sh/openapi openapi.json: GET /v1/balance, 'Wallet balance' of the authenticated key",
    ),
    "worker": ProbeSpec(
        "GET", _fixed("/readyz"), checks_key=False,
        source="backends/local/worker_app.py: 200 once the model is loaded and warmed up, else 503",
    ),
}
