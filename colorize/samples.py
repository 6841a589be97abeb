"""A small black-and-white sample archive built from scikit-image's bundled photos: nested folders, greyscale and
sepia prints, JPEG with EXIF (one stored sideways with an orientation tag), PNG, WebP, TIFF and a cameo with
transparency. ``colorize demo`` colorizes it; the archive benchmark reuses the photos.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# (skimage.data function, key in the archive, tone, format). Nested folders, greyscale and sepia, JPEG with
# EXIF (one stored sideways with an orientation tag), PNG, WebP, TIFF and a cameo cut out with transparency.
_LAYOUT = (
    ("astronaut", "portraits/astronaut.jpg", "grey", "JPEG"),
    ("astronaut", "portraits/1960s/astronaut-sepia.jpg", "sepia", "JPEG"),
    ("chelsea", "animals/cats/chelsea.jpg", "sepia", "JPEG"),
    ("chelsea", "animals/cats/chelsea-proof.png", "grey", "PNG"),
    ("coffee", "still-life/coffee.jpg", "grey", "JPEG"),
    ("coffee", "still-life/coffee-sepia.webp", "sepia", "WEBP"),
    ("rocket", "space/rocket.jpg", "grey", "JPEG"),
    ("rocket", "space/launch/rocket-sideways.jpg", "rotated", "JPEG"),
    ("hubble_deep_field", "space/hubble.jpg", "grey", "JPEG"),
    ("moon", "space/moon.png", "grey", "PNG"),
    ("camera", "street/cameraman.tif", "grey", "TIFF"),
    ("coins", "objects/coins.jpg", "sepia", "JPEG"),
    ("immunohistochemistry", "objects/slide.jpg", "grey", "JPEG"),
    ("astronaut", "portraits/cameo.png", "cameo", "PNG"),
)
_CAPTION, _DATE, _ORIENTATION = 0x010E, 0x0132, 0x0112


def sample_photos() -> Iterator[tuple[str, Any]]:
    """(name, PIL image) for each distinct photo in the layout, loaded from scikit-image's own files."""
    import numpy as np
    import skimage.data
    from PIL import Image

    for name in dict.fromkeys(name for name, *_ in _LAYOUT):
        yield name, Image.fromarray(np.asarray(getattr(skimage.data, name)(), dtype=np.uint8))  # L, RGB or RGBA


def tone(image: Any, kind: str) -> Any:
    """The photo as an old print: greyscale, sepia (a brown-toned greyscale) or a cameo with transparency."""
    from PIL import Image, ImageDraw, ImageOps

    grey = image.convert("L")
    if kind == "sepia":
        return ImageOps.colorize(grey, black=(40, 26, 13), white=(255, 240, 205))
    if kind == "cameo":  # an oval cut-out: transparent outside
        alpha = Image.new("L", grey.size, 0)
        ImageDraw.Draw(alpha).ellipse((grey.width * 0.1, 0, grey.width * 0.9, grey.height - 1), fill=255)
        return Image.merge("LA", (grey, alpha))
    return grey


def encode_sample(image: Any, fmt: str, caption: str, sideways: bool = False) -> bytes:
    from PIL import Image

    exif = Image.Exif()
    exif[_CAPTION] = caption
    exif[_DATE] = "1962:02:20 09:47:00"
    if sideways:  # store rotated and let the orientation tag put it upright
        image = image.transpose(Image.Transpose.ROTATE_90)
        exif[_ORIENTATION] = 6
    buffer = io.BytesIO()
    params: dict[str, Any] = {"exif": exif.tobytes()} if fmt in {"JPEG", "WEBP", "PNG", "TIFF"} else {}
    if fmt in {"JPEG", "WEBP"}:
        params["quality"] = 90
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def build_sample_archive(root: Path) -> int:
    """Write the sample archive under ``root``; returns the number of files."""
    photos = dict(sample_photos())
    for name, key, kind, fmt in _LAYOUT:
        image = tone(photos[name], "grey" if kind == "rotated" else kind)
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_sample(image, fmt, f"{name} (scikit-image sample)", sideways=kind == "rotated"))
    return len(_LAYOUT)
