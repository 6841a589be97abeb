"""The ingress's work as plain functions: read a bounded body, split multipart, check image headers (nothing is
decoded here: the model deployment runs the whole pixel path), negotiate the output format.

Nothing here reads server files or fetches URLs: every image comes from the request body.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from model import ColorizeError, ImageLimits, ImageTooLargeError, NotAnImageError
from model.imageio import ImageHeader, probe_image
from services.errors import ApiError

MEDIA_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp"}
_PIL_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
_FROM_PIL = {v: k for k, v in _PIL_FORMATS.items()}
_MULTIPART_FIELDS = {"image", "style"}


@dataclass
class Upload:
    """What a request carries: the image to colorize and, optionally, a reference image for its palette."""

    image: bytes
    style: bytes | None = None


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The whole body, refused with 413 as soon as it is known to exceed ``max_bytes`` (the declared
    Content-Length first, then the bytes actually received, so a lying or chunked upload is cut off too)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise ImageTooLargeError(f"request body is {int(declared):,} bytes; the limit is {max_bytes:,}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise ImageTooLargeError(f"request body exceeds the limit of {max_bytes:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").lower().startswith("multipart/form-data")


async def parse_upload(request: Request, body: bytes) -> Upload:
    """Raw body (any content type) or ``multipart/form-data`` with a file field ``image`` and optional
    ``style``."""
    if not is_multipart(request):
        return Upload(image=body)
    delivered = False

    async def replay() -> dict[str, object]:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=4, max_fields=16, max_part_size=64 * 1024)
    except (MultiPartException, HTTPException) as exc:
        raise ApiError(400, f"malformed multipart body: {getattr(exc, 'detail', None) or exc}") from None
    try:
        unknown = sorted(set(form.keys()) - _MULTIPART_FIELDS)
        if unknown:
            raise ApiError(422, f"unknown multipart field(s) {unknown}; expected 'image' and optional 'style'")
        image = await _file_field(form.getlist("image"), "image", required=True)
        style = await _file_field(form.getlist("style"), "style", required=False)
    finally:
        await form.close()
    assert image is not None
    return Upload(image=image, style=style)


async def _file_field(values: list[UploadFile | str], name: str, *, required: bool) -> bytes | None:
    if not values:
        if required:
            raise ApiError(422, f"multipart body needs a file field {name!r}")
        return None
    if len(values) > 1:
        raise ApiError(422, f"multipart field {name!r} given {len(values)} times; send one file")
    value = values[0]
    if not isinstance(value, UploadFile):
        raise ApiError(422, f"multipart field {name!r} must be a file upload, not a text value")
    return await value.read()


def check_headers(upload: Upload, limits: ImageLimits) -> ImageHeader:
    """The image's header (and the style reference's), checked against ``limits`` without decoding a pixel:
    empty, not an image (415), too large (413) are refused here, before the request reaches the model."""
    header = probe_image(upload.image, limits)
    if upload.style is not None:
        try:
            probe_image(upload.style, limits)
        except NotAnImageError:
            raise NotAnImageError("the style image is not in any supported image format") from None
        except ColorizeError as exc:
            raise type(exc)(f"the style image: {exc}") from None
    return header


def negotiate_format(requested: str | None, accept: str | None, source_format: str | None, default: str) -> str:
    """``jpeg|png|webp``: the ``format`` parameter, else the best image type ``Accept`` names, else the input's
    own format when writable, else ``default``. An ``Accept`` that allows no image type is a 406."""
    if requested:
        return requested
    same = _FROM_PIL.get(source_format or "", default)
    if not accept or not accept.strip():
        return same
    best: tuple[float, int, str] | None = None
    for order, item in enumerate(accept.split(",")):
        media, _, params = item.strip().partition(";")
        media = media.strip().lower()
        q = _quality(params)
        if q <= 0:
            continue
        if media in {"*/*", "image/*"}:
            choice = same
        else:
            choice = next((fmt for fmt, mt in MEDIA_TYPES.items() if mt == media), "")
        if choice and (best is None or (q, -order) > (best[0], best[1])):
            best = (q, -order, choice)
    if best is None:
        raise ApiError(406, f"cannot answer with any type in Accept: {accept!r}; use image/jpeg, png or webp")
    return best[2]


def _quality(params: str) -> float:
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0
