"""Schemathesis hooks for the gateway (loaded by the run through ``SCHEMATHESIS_HOOKS``).

A JSON Schema can say that ``image`` is a binary file but not that it must decode as a PNG, JPEG
or WebP picture, so schemathesis's "valid" edits carry random bytes the gateway rightly refuses
(400 ``invalid_image_format``). In the cases it generates as valid, this swaps in a real image;
invalid cases keep whatever it drew.
"""

from __future__ import annotations

import schemathesis
from schemathesis import Case
from schemathesis.hooks import HookContext

from tests.proxy.images.samples import encode

SOURCE_IMAGE = encode("PNG", side=64)


@schemathesis.hook
def map_case(context: HookContext, case: Case) -> Case:
    meta = case.meta
    if meta is not None and meta.generation.mode.is_positive and isinstance(case.body, dict) and "image" in case.body:
        case.body["image"] = SOURCE_IMAGE
    return case
