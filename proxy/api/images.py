"""``POST /v1/images/generations``, ``POST /v1/images/edits`` and the image downloads.

Handlers hand the raw body to the request model, which parses and validates it in one pass and
names the offending field. Generations take only the ``gateway`` (its billing included): each
injected dependency costs microseconds on the hottest path. Edits also take the ``settings``
(the upload's pixel cap); parsing their multipart body costs far more.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from litestar import HttpMethod, Request, Response, get, post, route
from litestar.datastructures import FormMultiDict, UploadFile
from litestar.exceptions import ClientException
from litestar.handlers import HTTPRouteHandler
from litestar.params import Parameter

from backends.base import sniff_format
from core.errors import InvalidRequest, NotFound
from pricing.keys import KeyRecord
from proxy.api.access_log import record_of
from proxy.api.disconnect import unless_disconnected
from proxy.api.file_answer import FileAnswer
from proxy.api.image_operations import (
    DOWNLOAD_HEAD_OPERATION,
    DOWNLOAD_OPERATION,
    edits_operation,
    generations_operation,
)
from proxy.api.image_stream import StreamOptions, stream_images
from proxy.api.injected import InjectedGateway, InjectedImageStore, InjectedSettings
from proxy.api.openai_fields import REFUSED_EDIT_FILES
from proxy.api.openai_request import PRICE_CEILING_HEADER, ClientImageRequest, read_form, read_json_body
from proxy.api.served_limits import ServedLimits
from proxy.gateway import Gateway, ImagesResponse
from proxy.images.body import images_body
from proxy.images.store import MEDIA_TYPES, ImageFile, ImageStore
from proxy.images.validate import validate_init_image
from proxy.routing.choice import RoutingChoice

AnyRequest = Request[Any, Any, Any]
IMAGES_MEDIA_TYPE = "application/json"
ImageName = Annotated[str, Parameter(description="As the image's url gives it")]
"""Any text: the image store answers a name it never hands out as it answers an unknown one
(``proxy.images.store.valid_name``), so a malformed name is the same 404, showing nothing of how
names are checked."""


def routing_choice(request: AnyRequest, asked: ClientImageRequest) -> RoutingChoice:
    """What the client asks of the router: ``routing_policy`` (the body's, else the header's), a
    pinned route and hedging (headers)."""
    return RoutingChoice.from_headers(request.headers, asked.routing_policy)


async def answer(request: AnyRequest, gateway: Gateway, key: KeyRecord,
                 asked: ClientImageRequest) -> ImagesResponse | Response[Any]:
    """Serve what ``asked`` asks: the served images, to answer as JSON (``json_response``), or
    the stream's response when it asked to stream."""
    routing = routing_choice(request, asked)
    image_request = asked.image
    if (record := record_of(request.scope)) is not None:
        record.user, record.prompt = image_request.user, image_request.prompt
    if asked.stream:
        return await stream_images(request, gateway, key, image_request, StreamOptions(asked.partial_images),
                                   routing)
    base_url = gateway.links.for_request(request)
    return await unless_disconnected(request, gateway.generate(
        image_request, base_url=base_url, key=key,
        idempotency_key=request.headers.get("idempotency-key"), routing=routing,
    ))


def json_response(answered: ImagesResponse | Response[Any]) -> Response[Any]:
    """``answer``'s result as Litestar's response."""
    if isinstance(answered, Response):
        return answered
    return Response(content=images_body(answered.body), media_type=IMAGES_MEDIA_TYPE, headers=answered.headers)


async def generation(request: AnyRequest, gateway: Gateway) -> ImagesResponse | Response[Any]:
    """``POST /v1/images/generations``, from the key to the answer: what both the Litestar route
    and the lean path (``proxy.api.lean_generations``) serve."""
    key = await gateway.billing.authenticate(request.headers.get("authorization"))
    asked = read_json_body(await request.body(), ceiling=request.headers.get(PRICE_CEILING_HEADER))
    return await answer(request, gateway, key, asked)


async def create_image(request: AnyRequest, gateway: InjectedGateway) -> Response[Any]:
    return json_response(await generation(request, gateway))


async def edit_image(request: AnyRequest, gateway: InjectedGateway, settings: InjectedSettings) -> Response[Any]:
    key = await gateway.billing.authenticate(request.headers.get("authorization"))
    form = await edit_form(request)
    fields: dict[str, str] = {}
    uploads: list[UploadFile] = []
    for name, value in form.multi_items():
        if name in REFUSED_EDIT_FILES:
            raise InvalidRequest(f"'{name}' is not supported here: {REFUSED_EDIT_FILES[name]}", param=name,
                                 code="unsupported_parameter")
        if name in ("image", "image[]"):
            if not isinstance(value, UploadFile):
                raise InvalidRequest(f"'{name}' must be a file (PNG, JPEG or WebP)", param="image",
                                     code="invalid_image_part")
            uploads.append(value)
        elif isinstance(value, UploadFile):
            raise InvalidRequest(f"Unrecognized file supplied: {name}", param=name, code="unknown_parameter")
        elif name in fields:
            raise InvalidRequest(f"'{name}' is given more than once", param=name)
        else:
            fields[name] = value
    if not uploads:
        raise InvalidRequest("An 'image' file is required", param="image")
    if len(uploads) > 1:
        raise InvalidRequest("Only one source image is supported", param="image", code="unsupported_value")
    init_image = await validate_init_image(await uploads[0].read(), settings.max_upload_pixels)
    asked = read_form(fields, init_image, ceiling=request.headers.get(PRICE_CEILING_HEADER))
    return json_response(await answer(request, gateway, key, asked))


async def edit_form(request: AnyRequest) -> FormMultiDict:
    """The edit's multipart form, or the 400 that says what to send instead: Litestar's own
    errors (a 400 with no code) and its charset errors are translated here, where it is known
    that the body is the edit form."""
    media_type, options = request.content_type  # parsed, lower-cased: media types ignore case
    if media_type != "multipart/form-data":
        raise InvalidRequest("/v1/images/edits takes multipart/form-data with an 'image' file",
                             param="image")
    if not options.get("boundary"):
        raise InvalidRequest("The Content-Type has no boundary: send multipart/form-data; boundary=... (an HTTP "
                             "client's multipart encoder sets it)", code="multipart_boundary_missing")
    try:
        return await request.form()
    except ClientException as exc:  # the multipart parser's: malformed, or past its limits
        raise InvalidRequest(
            "The multipart body cannot be read: send a well-formed form of at most "
            f"{request.app.multipart_form_part_limit} parts, each with headers under 4 KB: the 'image' file and "
            "the text fields", code="invalid_multipart") from exc
    except UnicodeDecodeError as exc:  # Litestar decodes each part without a filename as text
        if sniff_format(exc.object[:16]) is not None:
            raise InvalidRequest("'image' must be a file (PNG, JPEG or WebP): this form sends an image as a text "
                                 "field; send it as a file part, with a filename", param="image",
                                 code="invalid_image_part") from exc
        raise _not_in_its_charset() from exc
    except LookupError as exc:  # a charset Python does not know
        raise _not_in_its_charset() from exc


def _not_in_its_charset() -> InvalidRequest:
    return InvalidRequest("A form field is not text in its declared charset (UTF-8 by default)",
                          code="invalid_form_encoding")


@get("/v1/images/files/{name:str}", operation_class=DOWNLOAD_OPERATION)
async def download_image(name: ImageName, image_store: InjectedImageStore) -> Response[bytes]:
    """The image as its store keeps it: bytes, or an open file sent from the file (``FileAnswer``)."""
    return await _image_answer(name, image_store, head=False)


@route("/v1/images/files/{name:str}", http_method=HttpMethod.HEAD, operation_class=DOWNLOAD_HEAD_OPERATION)
async def image_head(name: ImageName, image_store: InjectedImageStore) -> Response[bytes]:
    """What ``GET`` answers (a 404 as well), its body left out: a file is opened and checked as
    for ``GET``, then closed unread (``FileAnswer``); bytes kept in the store are counted, not sent."""
    return await _image_answer(name, image_store, head=True)


async def _image_answer(name: str, image_store: ImageStore, *, head: bool) -> Response[bytes]:
    image = await image_store.download(name)
    if image is None:
        raise NotFound(f"This image does not exist or has expired (images live {lifetime(image_store.ttl_s)})",
                       param="name")
    media_type = MEDIA_TYPES[name.rsplit(".", 1)[-1]]
    headers = {"cache-control": f"private, max-age={int(image_store.ttl_s)}"}
    if isinstance(image, ImageFile):
        return FileAnswer(image, media_type=media_type, headers=headers)
    if head:
        return Response(content=b"", media_type=media_type, headers={**headers, "content-length": str(len(image))})
    return Response(content=image, media_type=media_type, headers=headers)


def image_handlers(generations: ServedLimits | None, edits: ServedLimits | None, *,
                   pins: Sequence[str] = (), edit_pins: Sequence[str] = ()) -> list[HTTPRouteHandler]:
    """The image endpoints, documented with what this deployment's routes serve: ``generations``
    for all of them, ``edits`` for those that do image-to-image (None: no route does, and the
    edits endpoint, which then refuses every request, is left out of the document); ``pins`` and
    ``edit_pins``, what ``x-boltgate-route`` may name for each."""
    return [
        post("/v1/images/generations", status_code=200,
             operation_class=generations_operation(generations, pins))(create_image),
        post("/v1/images/edits", status_code=200, include_in_schema=edits is not None,
             operation_class=edits_operation(edits, edit_pins))(edit_image),
        download_image,
        image_head,
    ]


def lifetime(seconds: float) -> str:
    """``image_ttl_s`` in words: "60 minutes", "90 seconds"."""
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)} minutes"
    return f"{seconds:g} seconds"
