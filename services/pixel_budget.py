"""The per-request pixel budget, checked from image headers before any pixel is decoded.

Why: the cost of a colorization follows its pixel count, not its byte count. A 24 KB PNG of 5000x5000 black
pixels passes every byte limit, then decodes to 25 MP and keeps the model busy for tens of seconds. PIL's
``Image.open`` reads only the header (width and height are known before decoding), so the image and its style
reference are summed against ``pixel_budget`` and refused with 413 before anything is decompressed.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

from model.errors import ImageTooLargeError


def header_pixels(data: bytes) -> int | None:
    """Width x height from the header alone, or None when the header is unreadable (decoding then reports the
    precise error: empty, not an image, damaged)."""
    if not data:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:  # lazy: parses the header, decodes nothing
                width, height = image.size
    except Image.DecompressionBombError as exc:  # PIL's own bound (far above any budget)
        raise ImageTooLargeError(f"image header claims too many pixels: {exc}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        return None
    return int(width) * int(height)


def check_pixel_budget(budget: int, image: bytes, style: bytes | None = None) -> int:
    """Pixels the request would decode (image + style); raises :class:`ImageTooLargeError` (413) over
    ``budget``."""
    total = 0
    for what, data in (("image", image), ("style image", style)):
        pixels = header_pixels(data) if data is not None else None
        if pixels is None:
            continue
        total += pixels
        if total > budget:
            raise ImageTooLargeError(
                f"the request would decode {total:,} pixels (the {what} alone {pixels:,}); the per-request "
                f"pixel budget is {budget:,}: downscale it before sending"
            )
    return total
