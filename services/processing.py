"""The ingress's CPU work as plain functions: read a bounded body, split multipart, decode, downscale,
negotiate the output format, recombine predicted chroma with the input's own L* and encode.

Nothing here reads server files or fetches URLs: every image comes from the request body.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace

import numpy as np
from fastapi import Request
from PIL import Image, UnidentifiedImageError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from model import DecodedImage, ImageLimits, ImageTooLargeError, InvalidImageError, decode_image, encode_image
from model.compose import compose_lab
from model.errors import EmptyImageError, TruncatedImageError
from services.errors import ApiError, NotAnImageError

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


def decode(data: bytes, limits: ImageLimits, what: str = "image") -> DecodedImage:
    """:func:`model.decode_image`, telling content that is no image at all (415) from a damaged one (400)."""
    try:
        return decode_image(data, limits)
    except (EmptyImageError, TruncatedImageError):
        raise
    except InvalidImageError as exc:
        if not _identifiable(data):
            raise NotAnImageError(f"the {what} is not in any supported image format") from None
        raise InvalidImageError(f"the {what} is damaged: {exc}") from None


def _identifiable(data: bytes) -> bool:
    try:
        Image.open(io.BytesIO(data)).close()
    except UnidentifiedImageError:
        return False
    except Exception:
        return True  # PIL knows the format, the header is just broken
    return True


def downscale(image: DecodedImage, max_side: int | None) -> DecodedImage:
    """Shrink so the longer side is at most ``max_side`` (never enlarge). L* is resampled as float, so the
    answer's L* is the downscaled input's, not a re-quantised copy."""
    height, width = image.lightness.shape
    if max_side is None or max(height, width) <= max_side:
        return image
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    plane = Image.fromarray(np.ascontiguousarray(image.lightness, dtype=np.float32), "F")
    lightness = np.clip(np.asarray(plane.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)), 0.0, 100.0)
    alpha = None
    if image.alpha is not None:
        alpha = np.asarray(Image.fromarray(image.alpha, "L").resize(size, Image.Resampling.LANCZOS))
    return replace(image, lightness=lightness.astype(np.float32), alpha=alpha)


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


def render(image: DecodedImage, ab_half: np.ndarray, fmt: str, quality: int, upsample: str) -> bytes:
    """Recombine predicted a*b* with the input's own L* and encode (alpha kept where the format holds it)."""
    rgb = compose_lab(image.lightness, ab_half, upsample)
    return encode_image(rgb, alpha=image.alpha, format=_PIL_FORMATS[fmt], quality=quality, exif=image.exif)
