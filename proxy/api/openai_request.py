"""OpenAI's Images API request, as its SDKs send it, turned into the one ``ImageRequest``.

The two body models here are the documented ones: the OpenAPI document is generated from them
(``proxy.api.openapi``), so every constraint it states is one they enforce. A JSON body is
validated strictly (``"n": "2"`` is a string, as the schema says, not a number); the form
fields of ``/v1/images/edits`` arrive as text and are parsed. What happens to each of OpenAI's
fields (honoured, mapped, refused) is decided in ``proxy.api.openai_fields``. Extras that the SDK
passes through ``extra_body`` (``negative_prompt``, ``seed``, ``steps``, ``guidance_scale``,
``max_price_usd``) are first-class fields, and so is ``routing_policy``, which goes to the router
rather than into the ``ImageRequest`` (``read_json_body``, ``read_form``). Unknown fields are
refused with the field named, as OpenAI does, so that a typo is not silently ignored.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal, NamedTuple, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from core.errors import InvalidRequest
from core.previews import MAX_PARTIAL_IMAGES
from core.request import (
    MAX_GUIDANCE,
    MAX_N,
    MAX_PROMPT_CHARS,
    MAX_SEED,
    MAX_STEPS,
    MAX_USER_CHARS,
    ImageRequest,
    resolve_model,
)
from pricing.config import RoutingPolicyName
from proxy.api.openai_fields import (
    FIDELITY_STRENGTH,
    PROMPT_PATTERN,
    QUALITY_STEPS,
    REFUSED_FIELDS,
    SIZE_PATTERN,
    refusal,
)
from proxy.routing.choice import POLICY_HEADER

_SIZE = re.compile(r"([1-9][0-9]{0,4})x([1-9][0-9]{0,4})")
"""WIDTHxHEIGHT in ASCII digits without leading zeros, whole (``fullmatch``): what the documented
``SIZE_PATTERN`` allows, so that the schema and the validator agree."""
_NOT_BLANK = re.compile(PROMPT_PATTERN)
_CLIENT_NAME = {"width": "size", "height": "size", "init_image": "image"}
EDIT_ONLY_FIELDS = frozenset({"strength", "input_fidelity"})
PRICE_CEILING_HEADER = "x-boltgate-max-price-usd"
PRICE_PATTERN = r"^[0-9]{1,9}(\.[0-9]{1,12})?$"
"""A price ceiling in a header: plain decimal USD (no sign, exponent or underscores)."""
_PRICE = re.compile(PRICE_PATTERN.removeprefix("^").removesuffix("$"))


def _whole_number(value: Any) -> Any:
    """JSON Schema's ``integer`` takes ``33.0`` (a number with no fraction); strict pydantic does
    not. Whole floats become ints here; everything else is left to the field's own check."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


WHOLE = BeforeValidator(_whole_number)
"""Marks an integer field of a body: a JSON integer, or a number without a fraction."""


def _booleans_only(value: Any) -> Any:
    """``Literal[False]`` alone takes ``0`` (``0 == False``); JSON Schema's boolean does not."""
    if value is not None and not isinstance(value, bool):
        raise ValueError("Input should be a boolean")
    return value


def _refused(reason: str) -> Any:
    """A field accepted only as null (or absent), documented with why."""
    return Field(default=None, description=f"Not supported: {reason}. Any value but null is refused (400).")


class OpenAIImageBody(BaseModel):
    """The body of ``POST /v1/images/generations``."""

    model_config = ConfigDict(extra="forbid", title="ImageGenerationRequest")

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS, json_schema_extra={"pattern": PROMPT_PATTERN},
                        description="What to draw; not blank.")
    model: str | None = Field(default=None, description="sdxl-lightning or one of its aliases (GET /v1/models).")
    n: Annotated[int, Field(ge=1, le=MAX_N), WHOLE] | None = Field(default=None,
                                                                   description="How many images (default 1).")
    size: str | None = Field(default=None, json_schema_extra={"pattern": SIZE_PATTERN},
                             description="WIDTHxHEIGHT, sides 256-1536 in multiples of 8, or auto (1024x1024).")
    response_format: Literal["url", "b64_json"] | None = Field(
        default=None, description="url (default; served by the gateway for image_ttl_s) or b64_json.")
    output_format: Literal["png", "jpeg", "webp"] | None = Field(default=None, description="Default png.")
    output_compression: Annotated[int, Field(ge=0, le=100), WHOLE] | None = Field(
        default=None,
        description="Encoder quality of jpeg and webp images (100 best); png is lossless and always whole.")
    quality: Literal["low", "medium", "high", "xhigh", "max", "standard", "hd", "auto"] | None = Field(
        default=None, description="Mapped to steps: low 2, medium/standard 4, high/hd/xhigh/max 8, auto the "
                                  "default; steps wins when given.")
    background: Literal["opaque", "auto"] | None = Field(
        default=None, description="The images are opaque; transparent is refused.")
    moderation: Literal["auto"] | None = Field(default=None, description="The vendors' own filters; low is refused.")
    stream: Annotated[Literal[False] | None, BeforeValidator(_booleans_only)] = Field(
        default=None, description="Streaming is not offered; true is refused.")
    user: str | None = Field(default=None, max_length=MAX_USER_CHARS,
                             description="Your end user's id, written to the access log; never sent to vendors.")
    safety_identifier: str | None = Field(default=None, max_length=MAX_USER_CHARS,
                                          description="As user, and wins over it when not empty.")
    style: None = _refused(REFUSED_FIELDS["style"])
    complexity: None = _refused(REFUSED_FIELDS["complexity"])
    partial_images: None = _refused(REFUSED_FIELDS["partial_images"])
    frame_count: None = _refused(REFUSED_FIELDS["frame_count"])
    frame_duration_ms: None = _refused(REFUSED_FIELDS["frame_duration_ms"])
    svg: None = _refused(REFUSED_FIELDS["svg"])
    negative_prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS, description="What not to draw.")
    seed: Annotated[int, Field(ge=0, le=MAX_SEED), WHOLE] | None = Field(default=None,
                             description="Drawn and returned (body and x-boltgate-seed) when absent.")
    steps: Annotated[int, Field(ge=1, le=MAX_STEPS), WHOLE] | None = Field(default=None,
                                                                          description="Denoising steps (default 4).")
    num_inference_steps: Annotated[int, Field(ge=1, le=MAX_STEPS), WHOLE] | None = Field(default=None,
                                            description="Alias of steps; steps wins when both are given.")
    guidance_scale: float | None = Field(default=None, ge=0, le=MAX_GUIDANCE, allow_inf_nan=False,
                                         description="Classifier-free guidance (default 0, as Lightning wants).")
    max_price_usd: (Annotated[float, Field(ge=0, allow_inf_nan=False)]
                    | Annotated[str, Field(pattern=PRICE_PATTERN)] | None) = Field(
        default=None, description=f"Skip routes priced above this (USD, a number or a decimal string); also the "
                                  f"{PRICE_CEILING_HEADER} header.")
    routing_policy: RoutingPolicyName | None = Field(
        default=None, description=f"How the router orders routes for this request, within what the key allows "
                                  f"(default: the gateway's routing_policy); also the {POLICY_HEADER} header, "
                                  f"which this field wins over.")

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str) -> str:
        if _NOT_BLANK.search(value) is None:
            raise ValueError("prompt must not be blank")
        return value


StreamSwitch = Annotated[bool | None, BeforeValidator(_booleans_only)]
PartialImageCount = Annotated[int, Field(ge=0, le=MAX_PARTIAL_IMAGES), WHOLE] | None


def _stream_field(events: str) -> Any:
    return Field(default=None, description=f"true: server-sent events, {events}.partial_image then "
                                           f"{events}.completed (one image, as b64_json).")


PARTIAL_IMAGES_FIELD = Field(default=None,
                             description="Partial images sent before the completed one while streaming (0-3).")


class OpenAIGenerationBody(OpenAIImageBody):
    """The body of ``POST /v1/images/generations`` itself: the image body plus streaming, which
    this endpoint and the edits answer (as server-sent events, ``proxy.api.image_stream``); an
    async job refuses it."""

    model_config = ConfigDict(extra="forbid", title="ImageGenerationRequest")

    stream: StreamSwitch = _stream_field("image_generation")  # type: ignore[assignment]
    partial_images: PartialImageCount = PARTIAL_IMAGES_FIELD  # type: ignore[assignment]


class OpenAIEditForm(OpenAIImageBody):
    """The text fields of ``POST /v1/images/edits`` (the ``image`` file comes beside them),
    streaming included, as OpenAI's edits stream (``image_edit.*`` events)."""

    model_config = ConfigDict(extra="forbid", title="ImageEditRequest")

    stream: StreamSwitch = _stream_field("image_edit")  # type: ignore[assignment]
    partial_images: PartialImageCount = PARTIAL_IMAGES_FIELD  # type: ignore[assignment]

    strength: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False,
                                   description="How far from the source image (default 0.6).")
    input_fidelity: Literal["high", "low"] | None = Field(
        default=None, description="Mapped to strength: high 0.35, low 0.6; strength wins when given.")


def parse_size(size: str | None) -> tuple[int, int]:
    if size is None or size == "auto":
        return 1024, 1024
    match = _SIZE.fullmatch(size)
    if match is None:
        raise InvalidRequest(f"size must be 'WIDTHxHEIGHT' (e.g. 1024x1024) or 'auto', not {size!r}",
                             param="size")
    return int(match.group(1)), int(match.group(2))


def price_ceiling(header: str | None) -> Decimal | None:
    """The ``x-boltgate-max-price-usd`` header as a price, or None when absent."""
    if header is None:
        return None
    if _PRICE.fullmatch(header) is None:
        raise InvalidRequest(f"{PRICE_CEILING_HEADER} must be a price in USD such as 0.05, not {header[:40]!r}",
                             param=PRICE_CEILING_HEADER)
    return Decimal(header)


class ClientImageRequest(NamedTuple):
    """A validated body: the image it asks for, what it asks of the router, and whether it is
    answered as a stream (generations and edits)."""

    image: ImageRequest
    routing_policy: RoutingPolicyName | None
    stream: bool = False
    partial_images: int = 0


def read_json_body(raw: bytes, *, ceiling: str | None = None) -> ClientImageRequest:
    """A ``/v1/images/generations`` body, validated strictly, with the price ceiling header."""
    try:
        body = OpenAIGenerationBody.model_validate_json(raw, strict=True)
    except ValidationError as error:
        raise _client_error(error) from error
    return _client_request(body, None, price_ceiling(ceiling))


def read_form(fields: dict[str, str], init_image: bytes, *, ceiling: str | None = None) -> ClientImageRequest:
    """The text fields of a ``/v1/images/edits`` form, parsed from text, and its source image."""
    return _client_request(_validate(_form_values(fields), OpenAIEditForm), init_image, price_ceiling(ceiling))


def _client_request(body: OpenAIGenerationBody | OpenAIEditForm, init_image: bytes | None,
                    ceiling: Decimal | None) -> ClientImageRequest:
    """A streaming-capable body (generations, edits) as what it asks for."""
    if body.partial_images and not body.stream:
        raise InvalidRequest("'partial_images' needs 'stream': true", param="partial_images")
    return ClientImageRequest(_build(body, init_image, ceiling), body.routing_policy,
                              bool(body.stream), body.partial_images or 0)


def from_json_body(raw: bytes, *, ceiling: str | None = None) -> ImageRequest:
    """``read_json_body``'s image request."""
    return read_json_body(raw, ceiling=ceiling).image


def from_form(fields: dict[str, str], init_image: bytes, *, ceiling: str | None = None) -> ImageRequest:
    """``read_form``'s image request."""
    return read_form(fields, init_image, ceiling=ceiling).image


def to_image_request(raw: Any, *, init_image: bytes | None = None, ceiling: Decimal | None = None,
                     strict: bool = False) -> ImageRequest:
    """Validate a decoded body (text values parsed) and build the ``ImageRequest``; ``strict``
    for a decoded JSON body, which takes each value only in its own JSON type, as
    ``read_json_body`` does (no ``false`` for a price, no ``"2"`` for ``n``)."""
    body = _validate(raw, OpenAIEditForm if init_image is not None else OpenAIImageBody, strict=strict)
    return _build(body, init_image, ceiling)


Body = TypeVar("Body", bound=OpenAIImageBody)


def _validate(raw: Any, model: type[Body], *, strict: bool = False) -> Body:
    if not isinstance(raw, dict):
        raise InvalidRequest("The request body must be a JSON object", param=None)
    try:
        return model.model_validate(raw, strict=strict)
    except ValidationError as error:
        raise _client_error(error) from error


def _form_values(fields: dict[str, str]) -> dict[str, Any]:
    """Form text as the JSON values it stands for where a field takes a boolean."""
    values: dict[str, Any] = dict(fields)
    if isinstance(stream := values.get("stream"), str) and stream.lower() in ("true", "false"):
        values["stream"] = stream.lower() == "true"
    return values


def _build(body: OpenAIImageBody, init_image: bytes | None, ceiling: Decimal | None) -> ImageRequest:
    width, height = parse_size(body.size)
    lossy = body.output_format in ("jpeg", "webp")
    steps = body.steps if body.steps is not None else body.num_inference_steps
    if steps is None and body.quality is not None:
        steps = QUALITY_STEPS[body.quality]
    strength = None
    if isinstance(body, OpenAIEditForm):
        strength = body.strength
        if strength is None and body.input_fidelity is not None:
            strength = FIDELITY_STRENGTH[body.input_fidelity]
    max_price = ceiling if body.max_price_usd is None else Decimal(
        body.max_price_usd if isinstance(body.max_price_usd, str) else repr(body.max_price_usd))
    fields: dict[str, Any] = {
        "model": resolve_model(body.model),
        "prompt": body.prompt,
        "width": width,
        "height": height,
        "negative_prompt": body.negative_prompt,
        "user": body.safety_identifier or body.user,
        "init_image": init_image,
        "output_compression": body.output_compression if lossy else None,  # png: lossless, nothing to set
    }
    optional = {
        "n": body.n,
        "seed": body.seed,
        "steps": steps,
        "guidance_scale": body.guidance_scale,
        "strength": strength,
        "response_format": body.response_format,
        "output_format": body.output_format,
        "max_price_usd": max_price,
    }
    fields.update({name: value for name, value in optional.items() if value is not None})
    renamed = {"steps": "num_inference_steps"} if body.steps is None and body.num_inference_steps else None
    try:
        return ImageRequest.model_validate(fields)
    except ValidationError as error:
        raise _first_error(error, renamed) from error


def _client_error(error: ValidationError) -> InvalidRequest:
    """The first problem of a body, in OpenAI's words where OpenAI has some."""
    first = error.errors(include_url=False)[0]
    kind = first["type"]
    if kind == "json_invalid":
        return InvalidRequest(f"We could not parse the JSON body of your request: {first['msg']}",
                              code="invalid_json")
    if not first["loc"]:
        return InvalidRequest("The request body must be a JSON object", param=None)
    name = str(first["loc"][0])
    if kind == "extra_forbidden":
        if name in EDIT_ONLY_FIELDS:
            return InvalidRequest(f"'{name}' applies to /v1/images/edits only", param=name,
                                  code="unknown_parameter")
        return InvalidRequest(f"Unrecognized request argument supplied: {name}", param=name,
                              code="unknown_parameter")
    # A field refused with any value fails as ``none_required``; the same name where a body
    # takes it (``partial_images`` on a stream) fails on its own terms (out of range...).
    honoured = name in REFUSED_FIELDS and kind != "none_required"
    reason = None if honoured else refusal(name, first.get("input"))
    if reason is not None:
        code = "unsupported_parameter" if name in REFUSED_FIELDS else "unsupported_value"
        return InvalidRequest(f"'{name}' is not supported here: {reason}", param=name, code=code)
    return _first_error(error)


def _first_error(error: ValidationError, renamed: dict[str, str] | None = None) -> InvalidRequest:
    first = error.errors(include_url=False)[0]
    loc = [str(part) for part in first["loc"]]
    names = {**_CLIENT_NAME, **(renamed or {})}
    field = names.get(loc[0], loc[0]) if loc else None
    message = first["msg"].removeprefix("Value error, ")
    if field == "size" and loc:
        message = f"{loc[0]} {message[0].lower()}{message[1:]} (from size)"
    return InvalidRequest(f"Invalid '{field}': {message}", param=field)
