"""Checks shared by the API tests: is an answer a correct colorization of what was sent?"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from model import decode_image

MAGIC = {"jpeg": b"\xff\xd8\xff", "png": b"\x89PNG\r\n\x1a\n", "webp": b"RIFF"}
MEDIA = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


def lightness(data: bytes) -> np.ndarray:
    return decode_image(data).lightness


def assert_colorized(sent: bytes, answer: bytes, fmt: str, *, tolerance: float = 1.0) -> None:
    """Same size as the input and, as the model promises, the input's own L* (up to 8-bit rounding for
    lossless PNG; lossy formats get a looser mean bound)."""
    assert answer.startswith(MAGIC[fmt]), answer[:16]
    source, result = lightness(sent), lightness(answer)
    assert result.shape == source.shape
    diff = np.abs(result - source)
    if fmt == "png":
        assert float(diff.max()) <= tolerance, float(diff.max())
    else:
        assert float(diff.mean()) <= 2.5, float(diff.mean())
    with Image.open(io.BytesIO(answer)) as image:
        assert image.mode in {"RGB", "RGBA"}


def has_colour(answer: bytes) -> bool:
    with Image.open(io.BytesIO(answer)) as image:
        rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    return bool(np.abs(rgb[..., 0] - rgb[..., 1]).mean() + np.abs(rgb[..., 1] - rgb[..., 2]).mean() > 1.0)
