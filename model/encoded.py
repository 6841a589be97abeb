"""Bytes in, bytes out: the predictor's pixel path for a batch of encoded images (:meth:`Colorizer.colorize_encoded`).

decode (per image; nvJPEG for JPEG batches on a GPU) -> optional downscale -> style vectors -> the network at the
working size and recombination with full-resolution L*, on the predictor's device, for the whole batch -> encode
(nvJPEG for JPEG on a GPU; PIL otherwise) with EXIF, an sRGB profile and alpha kept. A bad input fails its own
slot with its :class:`~model.errors.ColorizeError`; a batch that fails as a whole is retried image by image so
that only the culprit fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from model import gpu_codecs
from model.errors import ColorizeError, UnsupportedImageError
from model.imageio import DecodedImage, decode_image, downscale, encode_image, output_format

if TYPE_CHECKING:
    from model.predictor import Colorizer

STYLE_MAX_SIDE = 1024  # the global path sees a small square copy; a larger reference only costs decoding


@dataclass(frozen=True)
class EncodeRequest:
    """One image to colorize, as bytes, and how to answer it."""

    data: bytes
    format: str = "same"  # same | jpeg | png | webp | tiff ("same": the input's own, else PNG)
    quality: int = 92  # JPEG/WebP quality
    max_side: int | None = None  # reduce first so that no side exceeds this (never enlarges)
    style: bytes | None = None  # a reference image whose global features colour this one


@dataclass
class EncodedImage:
    """A colorized image, encoded."""

    data: bytes
    format: str  # PIL's name of the written format: JPEG | PNG | WEBP | TIFF
    width: int
    height: int
    source_format: str | None = None  # the input's container
    source_mode: str = "L"  # the input's pixel mode
    labels: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class _Item:
    index: int
    request: EncodeRequest
    image: DecodedImage  # metadata (and L* on the host when decoded by PIL)
    lightness: Any  # (H, W) L*: numpy on the host, or a tensor already on the device (nvJPEG)
    style: np.ndarray | None = None  # global vector of the request's reference image


def _failure(exc: Exception) -> ColorizeError:
    """Every failure leaves as a ColorizeError (an unexpected one keeps its class name in the message)."""
    if isinstance(exc, ColorizeError):
        return exc
    return ColorizeError(f"{type(exc).__name__}: {exc}")


def _decode(colorizer: Colorizer, requests: Sequence[EncodeRequest]) -> tuple[list[_Item], dict[int, Any]]:
    items: list[_Item] = []
    errors: dict[int, Any] = {}
    on_gpu = gpu_codecs.decodable(colorizer.device, [r.data for r in requests], colorizer.config.limits)
    decoded = gpu_codecs.decode_jpegs([requests[i].data for i in on_gpu], colorizer.device) if on_gpu else {}
    from_gpu = {on_gpu[j]: value for j, value in decoded.items()}
    for i, request in enumerate(requests):
        try:
            lum: Any
            if i in from_gpu:
                image, on_device = from_gpu[i]
                lum = gpu_codecs.downscale(on_device, request.max_side)
            else:
                image = downscale(decode_image(request.data, colorizer.config.limits), request.max_side)
                lum = image.lightness
            items.append(_Item(i, request, image, lum))
        except Exception as exc:  # one bad input fails its own slot only
            errors[i] = _failure(exc)
    return items, errors


def _styles(colorizer: Colorizer, items: list[_Item], errors: dict[int, Any]) -> list[_Item]:
    """Global vectors of the references (decoded at most STYLE_MAX_SIDE); a bad reference fails its request."""
    kept = []
    for item in items:
        if item.request.style is not None:
            try:
                reference = downscale(decode_image(item.request.style, colorizer.config.limits), STYLE_MAX_SIDE)
                item.style = colorizer.global_features([reference.lightness])[0]
            except Exception as exc:
                errors[item.index] = _failure(exc)
                continue
        kept.append(item)
    return kept


def _colorize(colorizer: Colorizer, items: list[_Item]) -> tuple[list[Any], list[list[tuple[str, float]]]]:
    """8-bit sRGB for each item (numpy, or device tensors when a GPU encoder takes them) and labels."""
    vectors = [it.style for it in items if it.style is not None]
    if vectors and len(vectors) != len(items):
        raise ValueError("a batch mixes styled and plain requests")  # the caller splits them
    style = np.stack(vectors) if vectors else None
    return colorizer.colorize_planes([it.lightness for it in items], style, keep_on_device=True)


def _colorize_groups(colorizer: Colorizer, items: list[_Item], errors: dict[int, Any]) -> dict[int, Any]:
    """Colorize plain and styled requests as two batches; a failing batch is retried image by image."""
    out: dict[int, Any] = {}
    for group in ([it for it in items if it.style is None], [it for it in items if it.style is not None]):
        if not group:
            continue
        try:
            rgb, labels = _colorize(colorizer, group)
            out.update({it.index: (r, lab) for it, r, lab in zip(group, rgb, labels, strict=True)})
            continue
        except Exception as exc:
            if len(group) == 1:
                errors[group[0].index] = _failure(exc)
                continue
        for it in group:
            try:
                (r,), (lab,) = _colorize(colorizer, [it])
                out[it.index] = (r, lab)
            except Exception as exc:
                errors[it.index] = _failure(exc)
    return out


def _encode(item: _Item, rgb: Any, labels: list[tuple[str, float]], encoder: Any) -> EncodedImage:
    request, image = item.request, item.image
    fmt = output_format(request.format, image.format)
    if isinstance(rgb, torch.Tensor):
        if fmt == "JPEG" and encoder is not None:
            data = encoder(rgb, request.quality, image.exif)
            return _result(data, fmt, rgb.shape, image, labels)
        rgb = rgb.cpu().numpy()
    data = encode_image(rgb, alpha=image.alpha, format=fmt, quality=request.quality, exif=image.exif)
    return _result(data, fmt, rgb.shape, image, labels)


def _result(data: bytes, fmt: str, shape: Any, image: DecodedImage, labels: Any) -> EncodedImage:
    return EncodedImage(data, fmt, int(shape[1]), int(shape[0]), image.format, image.mode, labels)


def run_encoded(colorizer: Colorizer, requests: Sequence[EncodeRequest]) -> list[Any]:
    """See :meth:`model.predictor.Colorizer.colorize_encoded`."""
    items, errors = _decode(colorizer, requests)
    items = _styles(colorizer, items, errors)
    colorized = _colorize_groups(colorizer, items, errors)
    encoder = gpu_codecs.jpeg_encoder(colorizer.device)
    results: list[Any] = [None] * len(requests)
    for item in items:
        if item.index not in colorized:
            continue
        rgb, labels = colorized[item.index]
        try:
            results[item.index] = _encode(item, rgb, labels, encoder)
        except Exception as exc:
            errors[item.index] = _failure(exc)
    for i, error in errors.items():
        results[i] = error
    missing = [i for i, r in enumerate(results) if r is None]
    for i in missing:  # cannot happen; never answer a request with nothing
        results[i] = UnsupportedImageError("the image was left unprocessed")
    return results
