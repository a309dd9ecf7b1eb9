"""Schemathesis hooks for the gateway (loaded by the run through ``SCHEMATHESIS_HOOKS``).

A JSON Schema can say that ``image`` is a binary file but not that it must decode as a PNG, JPEG
or WebP picture, so schemathesis's "valid" edits carry random bytes the gateway rightly refuses
(400 ``invalid_image_format``). In the cases it generates as valid, this swaps in a real image;
invalid cases keep whatever it drew.

Likewise a schema cannot say that ``x-boltgate-route`` narrows the body to what that one route
serves (the document states the union of the routes' limits), so a "valid" case that pins a route
with steps or a seed that route does not take is rightly a 400 ``unsupported_request``. Valid
cases are sent unpinned; invalid ones keep the header; pinning itself is tested in
``tests/proxy/api/test_routing_choice.py``.

And a schema cannot say that ``stream: true`` needs ``n`` 1 and base64, nor that the answer is then
``text/event-stream``: valid cases are sent without ``stream``/``partial_images``; streaming is
tested through the ``openai`` SDK in ``tests/e2e/test_image_streaming.py``.

Nor can it say that a field only some routes take narrows the others: the routes that take
``guidance_scale`` serve at most 12 steps while others serve 50, so a "valid" case with both is
rightly a 400 ``unsupported_request`` (the limitation the README states). Valid cases are sent
without ``guidance_scale``; it is tested in ``tests/proxy/api/test_openapi.py`` and the routing tests.

A job's ``webhook_url`` must reach a public address over https, which no schema states (and a
fuzzed host would be called): valid job cases are sent without one; webhooks are tested against a
real receiver in ``tests/proxy/jobs``.
"""

from __future__ import annotations

import schemathesis
from schemathesis import Case
from schemathesis.hooks import HookContext

from proxy.routing.choice import ROUTE_HEADER
from tests.proxy.images.samples import encode

SOURCE_IMAGE = encode("PNG", side=64)


@schemathesis.hook
def map_case(context: HookContext, case: Case) -> Case:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return case
    if isinstance(case.body, dict) and "image" in case.body:
        case.body["image"] = SOURCE_IMAGE
    if isinstance(case.body, dict):
        for field in ("stream", "partial_images", "guidance_scale", "webhook_url"):
            case.body.pop(field, None)
    if case.headers is not None:
        case.headers.pop(ROUTE_HEADER, None)
    return case
