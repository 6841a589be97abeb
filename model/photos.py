"""Colour photos read from disk for evaluation, calibration and training: trusted data, not user input, so no
byte or pixel limits (those belong to :mod:`model.imageio`, which decodes what users send)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps


def open_rgb(path: Path) -> Image.Image:
    """Decode one photo upright as 8-bit RGB (training data, not user input: no byte or pixel limits)."""
    with Image.open(path) as image:
        upright = ImageOps.exif_transpose(image) or image
        return upright.convert("RGB")


def fit_max_side(image: Image.Image, max_side: int | None) -> np.ndarray:
    """8-bit RGB array of ``image``, downscaled (Lanczos) so that its longer side is at most ``max_side``."""
    image = image.convert("RGB")
    if max_side and max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8)


def read_images(paths: Iterable[Any], max_side: int | None, skipped: list[str] | None = None) -> Iterator[np.ndarray]:
    """Decode colour photos (upright, RGB, at most ``max_side``); unreadable files are skipped and listed in
    ``skipped``."""
    for path in paths:
        try:
            image = open_rgb(path)
        except (OSError, ValueError) as exc:
            if skipped is not None:
                skipped.append(f"{path}: {exc}")
            continue
        yield fit_max_side(image, max_side)


def read_samples(
    samples: Iterable[Any], max_side: int | None, skipped: list[str] | None = None
) -> Iterator[tuple[str, np.ndarray]]:
    """Like :func:`read_images` for the samples of a data source (:class:`model.training.data.Sample` s):
    ``(source, rgb)`` pairs, so the report has one row per source."""
    for sample in samples:
        for rgb in read_images([sample.path], max_side, skipped):
            yield sample.source, rgb
