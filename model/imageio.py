"""Decoding and encoding with limits: every entry point reads images through :func:`decode_image`.

Decoding yields what colorization needs and nothing more: the display-oriented CIE L* plane (float32, from the
image's own pixels after ICC conversion to sRGB), the alpha plane if any, and the metadata to write back
(EXIF with orientation reset, source format). Bad input raises a domain error from :mod:`model.errors`.
"""

from __future__ import annotations

import dataclasses
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError

from model.color import srgb8_to_lightness, srgb_float_to_lightness
from model.config import ImageLimits
from model.errors import (
    EmptyImageError,
    ImageTooLargeError,
    InvalidImageError,
    NotAnImageError,
    TruncatedImageError,
    UnsupportedImageError,
)

ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is an error, never a half-grey picture

_EXIF_ORIENTATION = 0x0112
_EIGHT_BIT_MODES = {"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB"}
_HIGH_BIT_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N"}
_FORMATS = {"jpeg": "JPEG", "jpg": "JPEG", "png": "PNG", "webp": "WEBP", "tiff": "TIFF", "tif": "TIFF"}
_SRGB_PROFILE = ImageCms.createProfile("sRGB")


@dataclass
class DecodedImage:
    """An input ready for the predictor: L* plane in display orientation plus what encoding needs."""

    lightness: np.ndarray  # (H, W) float32, CIE L* in [0, 100]
    alpha: np.ndarray | None = None  # (H, W) uint8 when the source had transparency
    format: str | None = None  # source container, e.g. "JPEG"; None for in-memory images
    mode: str = "L"  # source pixel mode, for reports
    exif: bytes | None = None  # source EXIF with the orientation tag reset to 1 (pixels are already upright)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), as PIL reports sizes."""
        h, w = self.lightness.shape
        return w, h


def _open(data: bytes, limits: ImageLimits) -> Image.Image:
    if len(data) == 0:
        raise EmptyImageError("empty input (0 bytes)")
    if len(data) > limits.max_bytes:
        raise ImageTooLargeError(f"input is {len(data):,} bytes; the limit is {limits.max_bytes:,}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"image header claims too many pixels: {exc}") from None
    except UnidentifiedImageError:
        raise NotAnImageError("not in any supported image format") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImageError(f"cannot read image header: {exc}") from None
    width, height = image.size
    if width * height > limits.max_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} pixels; the limit is {limits.max_pixels:,} pixels"
        )
    if width < 1 or height < 1:
        raise InvalidImageError(f"image has no pixels ({width}x{height})")
    return image


def _load(image: Image.Image) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
    except OSError as exc:
        if "truncated" in str(exc) or "broken data stream" in str(exc):
            raise TruncatedImageError(f"image data is truncated: {exc}") from None
        raise InvalidImageError(f"corrupt image data: {exc}") from None
    except (SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise InvalidImageError(f"corrupt image data: {exc}") from None


def _exif_bytes(image: Image.Image) -> bytes | None:
    try:
        exif = image.getexif()
    except Exception:  # malformed EXIF never fails an image; it is just not copied
        return None
    if not exif:
        return None
    exif[_EXIF_ORIENTATION] = 1
    try:
        return exif.tobytes()
    except Exception:
        return None


def _to_srgb(image: Image.Image) -> Image.Image:
    """Convert RGB or CMYK with an embedded ICC profile to sRGB; images without one are taken to be sRGB."""
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in {"RGB", "CMYK"}:
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(image, source, _SRGB_PROFILE, outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image  # a broken profile falls back to plain conversion
    return converted if converted is not None else image


def lightness_of(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """L* plane and optional alpha of an already-loaded, upright PIL image."""
    mode = image.mode
    alpha: np.ndarray | None = None
    if mode in _HIGH_BIT_MODES:
        grey = np.asarray(image, dtype=np.float32) / 65535.0
        return srgb_float_to_lightness(np.clip(grey, 0.0, 1.0)), None
    if mode not in _EIGHT_BIT_MODES:
        raise UnsupportedImageError(f"unsupported pixel mode {mode!r}")
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "PA":
        image = image.convert("RGBA")
    elif mode == "La":
        image = image.convert("LA")
    elif mode == "RGBa":
        image = image.convert("RGBA")
    if image.mode in {"LA", "RGBA"}:
        alpha = np.asarray(image.getchannel("A"))
        image = image.convert("L" if image.mode == "LA" else "RGB")
    if image.mode == "1":
        image = image.convert("L")
    image = _to_srgb(image)
    if image.mode not in {"L", "RGB"}:
        image = image.convert("RGB")
    pixels = np.asarray(image)
    if pixels.ndim == 3 and pixels.shape[2] > 3:
        pixels = pixels[..., :3]
    if alpha is not None and alpha.min() == 255:
        alpha = None  # an opaque alpha plane carries nothing worth keeping
    return srgb8_to_lightness(pixels), alpha


def decode_image(source: bytes | str | Path, limits: ImageLimits | None = None) -> DecodedImage:
    """Decode bytes or a file into a :class:`DecodedImage`, enforcing ``limits`` before any pixel is decoded."""
    limits = limits or ImageLimits()
    if isinstance(source, (str, Path)):
        path = Path(source)
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise ImageTooLargeError(f"file is {size:,} bytes; the limit is {limits.max_bytes:,}")
        data = path.read_bytes()
    else:
        data = bytes(source)
    image = _open(data, limits)
    source_format, source_mode = image.format, image.mode
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)  # animated GIF / multi-page TIFF: the first frame
    _load(image)
    try:
        upright = ImageOps.exif_transpose(image) or image
    except Exception:
        upright = image  # unreadable orientation: keep the stored orientation
    exif = _exif_bytes(upright)
    lightness, alpha = lightness_of(upright)
    return DecodedImage(lightness=lightness, alpha=alpha, format=source_format, mode=source_mode, exif=exif)


@dataclass(frozen=True)
class ImageHeader:
    """What an image's header says, read without decoding a pixel."""

    format: str | None  # PIL's name, e.g. "JPEG"
    mode: str
    width: int  # as stored (before EXIF orientation)
    height: int
    icc_profile: bool
    orientation: int  # EXIF orientation tag, 1 when absent

    @property
    def pixels(self) -> int:
        return self.width * self.height


def probe_image(data: bytes, limits: ImageLimits | None = None) -> ImageHeader:
    """The header of ``data`` with the same checks and errors as :func:`decode_image`, decoding nothing (cheap
    even for a 25-megapixel scan): for refusing work early and for choosing a decoder."""
    image = _open(bytes(data), limits or ImageLimits())
    try:
        orientation = int(image.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:
        orientation = 1
    width, height = image.size
    icc = bool(image.info.get("icc_profile"))
    return ImageHeader(image.format, image.mode, width, height, icc, orientation)


def downscale(image: DecodedImage, max_side: int | None) -> DecodedImage:
    """Shrink so the longer side is at most ``max_side`` (never enlarge). L* is resampled as float, so the
    result's L* is the downscaled input's, not a re-quantised copy."""
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
    return dataclasses.replace(image, lightness=lightness.astype(np.float32), alpha=alpha)


def output_format(requested: str, source_format: str | None) -> str:
    """PIL format name for ``requested`` (same|jpeg|png|webp|tiff); ``same`` keeps the source's if writable."""
    requested = requested.lower()
    if requested == "same":
        if source_format in {"JPEG", "PNG", "WEBP", "TIFF"}:
            return source_format
        return "PNG"
    try:
        return _FORMATS[requested]
    except KeyError:
        raise ValueError(f"unknown output format {requested!r}; choose same|jpeg|png|webp|tiff") from None


def file_extension(pil_format: str) -> str:
    return {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "TIFF": ".tif"}[pil_format]


def encode_image(
    rgb: np.ndarray,
    *,
    alpha: np.ndarray | None = None,
    format: str = "JPEG",
    quality: int = 92,
    exif: bytes | None = None,
) -> bytes:
    """Encode ``(H, W, 3)`` uint8 sRGB (+ alpha where the format holds one) with EXIF and an sRGB profile."""
    fmt = output_format(format, None) if format.lower() in _FORMATS else format
    image = Image.fromarray(rgb, "RGB")
    if alpha is not None and fmt in {"PNG", "WEBP", "TIFF"}:
        image.putalpha(Image.fromarray(alpha, "L"))
    params: dict[str, object] = {"icc_profile": ImageCms.ImageCmsProfile(_SRGB_PROFILE).tobytes()}
    if exif:
        params["exif"] = exif
    if fmt in {"JPEG", "WEBP"}:
        params["quality"] = quality
    if fmt == "JPEG":
        params["subsampling"] = "4:2:0" if quality < 90 else "4:4:4"
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()
