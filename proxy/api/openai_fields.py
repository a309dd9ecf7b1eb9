"""What boltgate does with each field of OpenAI's Images API: honour it, map it, or refuse it.

Nothing a client sends is dropped in silence. Every field of ``POST /v1/images/generations`` and
``POST /v1/images/edits`` (as the ``openai`` SDK's ``ImageGenerateParams`` and
``ImageEditParams`` list them) is in one of three groups:

- **honoured** as OpenAI defines it: ``prompt``, ``model`` (an alias of the one model), ``n``,
  ``size``, ``response_format``, ``output_format`` (png, jpeg, webp), ``output_compression``
  (the jpeg/webp encoder quality; a png is lossless, always at full quality), ``background``
  (``opaque``/``auto``: the images are opaque),
  ``moderation`` (``auto``: the vendors' filters), ``stream`` and ``partial_images`` (on
  generations and edits, ``proxy.api.image_stream``; an async job refuses them), ``user`` and
  ``safety_identifier`` (written to the access log for abuse tracing, never sent to vendors);
  ``image`` (one source image);
- **mapped** onto the diffusion model's own knobs (``MAPPINGS``): ``quality`` to ``steps``,
  ``input_fidelity`` to ``strength``; an explicit ``steps``/``strength`` wins;
- **refused** with a 400 that names the field (``REFUSED_FIELDS``, ``REFUSED_VALUES``): what
  SDXL-Lightning or this gateway cannot do (masks, transparency, GIF, SVG...).
"""

from __future__ import annotations

from core.request import MAX_SIDE, MIN_SIDE, SIDE_STEP

QUALITY_STEPS: dict[str, int | None] = {
    "low": 2, "medium": 4, "high": 8, "xhigh": 8, "max": 8, "standard": 4, "hd": 8, "auto": None,
}
"""``quality`` -> denoising steps. SDXL-Lightning is distilled for 1, 2, 4 and 8 steps, so
``high`` and above are its best (8); ``auto`` keeps the default (4). ``steps`` wins when given."""

FIDELITY_STRENGTH: dict[str, float] = {"low": 0.6, "high": 0.35}
"""``input_fidelity`` (edits) -> ``strength``: how far the image may move from the source.
``low`` is OpenAI's default and boltgate's (0.6); ``high`` keeps more of it. ``strength`` wins."""

MAPPINGS = {"quality": "steps", "input_fidelity": "strength"}

REFUSED_FIELDS: dict[str, str] = {
    "style": "'vivid' and 'natural' are DALL-E 3 presets; describe the style in the prompt",
    "complexity": "SDXL-Lightning has no planning stage to spend computation on; use 'steps' or 'quality'",
    "partial_images": "partial images come only with streaming, which /v1/images/generations and "
                      "/v1/images/edits offer",
    "frame_count": "GIF output is not offered (png, jpeg or webp)",
    "frame_duration_ms": "GIF output is not offered (png, jpeg or webp)",
    "svg": "SVG output is not offered (png, jpeg or webp)",
}
"""Fields that are refused with any value but null."""

REFUSED_EDIT_FILES: dict[str, str] = {
    "mask": "inpainting is not offered: the routes edit the whole image (image-to-image with 'strength')",
    "markup": "markup images are not offered: describe the change in the prompt",
}
"""Files of ``/v1/images/edits`` that are refused."""

REFUSED_VALUES: dict[str, dict[object, str]] = {
    "background": {"transparent": "SDXL-Lightning draws opaque images; use 'opaque' or 'auto'"},
    "moderation": {"low": "moderation is the vendors' own and cannot be loosened; use 'auto'"},
    "stream": {True: "streaming is offered on /v1/images/generations and /v1/images/edits only: "
                     "this answer comes when the images are ready"},
    "output_format": {"gif": "GIF output is not offered (png, jpeg or webp)",
                      "svg": "SVG output is not offered (png, jpeg or webp)"},
}
"""Values of honoured fields that are refused, each with the reason."""


def refusal(field: str, value: object) -> str | None:
    """Why ``field=value`` is refused, or None when it is not one of the refused ones."""
    if value is None:
        return None
    if field in REFUSED_FIELDS:
        return REFUSED_FIELDS[field]
    for refused, reason in REFUSED_VALUES.get(field, {}).items():
        if type(value) is type(refused) and value == refused:  # ``1 == True``, yet 1 is not refused
            return reason
    return None


def _alternation(values: range) -> str:
    return "|".join(str(value) for value in values)


SIDES = range(MIN_SIDE, MAX_SIDE + 1, SIDE_STEP)
SIZE_PATTERN = f"^(auto|({_alternation(SIDES)})x({_alternation(SIDES)}))$"
"""The sizes served, as a JSON Schema pattern for the OpenAPI document (the validator in
``openai_request.parse_size`` says what is wrong in words; a test checks the two agree)."""
WHITE_SPACE = r"\t\n\x0b\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
"""The characters ``str.isspace`` calls white space, spelled out: ``\\s`` means another set in
each regex engine (ECMAScript's lacks U+001C-U+001F and adds U+FEFF)."""
PROMPT_PATTERN = f"[^{WHITE_SPACE}]"
"""Not blank: at least one character that is not white space."""
