"""Domain errors raised by the model layer.

Only ``services/`` turns these into HTTP status codes (one table there); pipelines record the class name
and message in their per-object reports.
"""

from __future__ import annotations


class ColorizeError(Exception):
    """Base class of every error this project raises on purpose."""


class InvalidImageError(ColorizeError):
    """The bytes are not a decodable image (not an image at all, or corrupt)."""


class NotAnImageError(InvalidImageError):
    """The bytes are in no image format at all (e.g. text or JSON), as opposed to a damaged image."""


class EmptyImageError(InvalidImageError):
    """A zero-byte input."""


class TruncatedImageError(InvalidImageError):
    """The image header is valid but its data ends early."""


class UnsupportedImageError(ColorizeError):
    """A real image in a pixel mode the colorizer cannot interpret (e.g. floating-point ``F``)."""


class ImageTooLargeError(ColorizeError):
    """The input exceeds the configured byte or pixel limit (this includes decompression bombs)."""


class CheckpointError(ColorizeError):
    """A checkpoint file is missing, malformed or does not match its config."""
