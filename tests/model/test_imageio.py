"""Decoding: every supported mode becomes an upright L* plane; every bad input its own domain error."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from model import (
    EmptyImageError,
    ImageLimits,
    ImageTooLargeError,
    NotAnImageError,
    TruncatedImageError,
    UnsupportedImageError,
    decode_image,
    encode_image,
)
from model.color import srgb8_to_lightness
from tests import imagegen


@pytest.mark.parametrize(
    ("data", "size", "has_alpha"),
    [
        (imagegen.grey_jpeg(333, 517), (333, 517), False),
        (imagegen.sepia_jpeg(64, 48), (64, 48), False),
        (imagegen.rgba_png(120, 80), (120, 80), True),
        (imagegen.palette_png(90, 70), (90, 70), False),
        (imagegen.one_pixel_png(), (1, 1), False),
        (imagegen.exif_rotated_jpeg(200, 120), (120, 200), False),  # displayed size, rotated
        (imagegen.sixteen_bit_png(64, 48), (64, 48), False),
        (imagegen.cmyk_jpeg(64, 48), (64, 48), False),
    ],
)
def test_supported_inputs_decode_upright(data: bytes, size: tuple[int, int], has_alpha: bool) -> None:
    decoded = decode_image(data)
    assert decoded.size == size
    assert decoded.lightness.dtype == np.float32
    assert decoded.lightness.min() >= 0.0 and decoded.lightness.max() <= 100.0
    assert (decoded.alpha is not None) == has_alpha


def test_lightness_is_the_images_own() -> None:
    pixels = imagegen.gradient(40, 30)
    decoded = decode_image(imagegen.encode(Image.fromarray(pixels, "L"), "PNG"))
    np.testing.assert_allclose(decoded.lightness, srgb8_to_lightness(pixels), atol=1e-4)


def test_sixteen_bit_keeps_precision() -> None:
    ramp = (np.linspace(0, 65535, 64 * 4).reshape(4, 64)).astype(np.uint16)
    decoded = decode_image(imagegen.encode(Image.fromarray(ramp), "PNG"))
    # 256 distinct grey levels would collapse some of the 256 columns; 16-bit input keeps them apart.
    assert len(np.unique(decoded.lightness.round(3))) > 250


def test_exif_is_kept_with_orientation_reset() -> None:
    decoded = decode_image(imagegen.exif_rotated_jpeg())
    assert decoded.exif is not None
    exif = Image.Exif()
    exif.load(decoded.exif)
    assert exif[0x0112] == 1
    assert exif[0x010E] == "A test caption"
    assert exif[0x0132] == "1921:05:04 10:00:00"


def test_icc_profile_is_converted_to_srgb() -> None:
    grey = imagegen.gradient(32, 32)
    rgb = Image.fromarray(np.stack([grey] * 3, axis=-1), "RGB")
    buf = io.BytesIO()
    rgb.save(buf, format="PNG", icc_profile=imagegen.matrix_icc_profile(gamma=1.0))
    plain = decode_image(imagegen.encode(rgb, "PNG"))
    tagged = decode_image(buf.getvalue())
    # Stored values tagged as linear light are brighter once converted to sRGB: L*(v) > L*(sRGB v).
    expected = srgb8_to_lightness(np.clip((grey / 255.0) ** (1 / 2.2) * 255 + 0.5, 0, 255).astype(np.uint8))
    assert tagged.lightness.mean() > plain.lightness.mean() + 5
    assert np.abs(tagged.lightness - expected).mean() < 3.0


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (b"", EmptyImageError, "0 bytes"),
        (imagegen.NOT_AN_IMAGE, NotAnImageError, "not in any supported image format"),
        (imagegen.truncated_jpeg(), TruncatedImageError, "truncated"),
        (imagegen.bomb_png(), ImageTooLargeError, "pixels"),
        (imagegen.float_tiff(), UnsupportedImageError, "mode 'F'"),
    ],
)
def test_bad_inputs_raise_their_own_error(data: bytes, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        decode_image(data)


def test_limits_are_configurable() -> None:
    data = imagegen.grey_jpeg(100, 100)
    with pytest.raises(ImageTooLargeError, match="limit is 9,999 pixels"):
        decode_image(data, ImageLimits(max_pixels=9_999))
    with pytest.raises(ImageTooLargeError, match="bytes"):
        decode_image(data, ImageLimits(max_bytes=100))
    assert decode_image(data, ImageLimits(max_pixels=10_000)).size == (100, 100)


def test_encode_round_trip_keeps_alpha_and_exif() -> None:
    rgb = imagegen.colour_photo(20, 10)
    alpha = np.full((10, 20), 77, np.uint8)
    exif = decode_image(imagegen.exif_rotated_jpeg()).exif
    png = Image.open(io.BytesIO(encode_image(rgb, alpha=alpha, format="PNG", exif=exif)))
    assert png.mode == "RGBA" and png.getchannel("A").getextrema() == (77, 77)
    jpeg = Image.open(io.BytesIO(encode_image(rgb, alpha=alpha, format="JPEG", quality=95, exif=exif)))
    assert jpeg.mode == "RGB" and jpeg.getexif()[0x010E] == "A test caption"
