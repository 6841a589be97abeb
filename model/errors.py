"""The project's error hierarchy, rooted here: the model layer's errors, and the base that the storage, video and
HTTP-only errors of the layers above derive from.

Each class says how it is answered, and nowhere else says it again: ``http_status`` (the API's status; the
handlers in ``services/errors.py`` add only the web framework's own exceptions) and ``exit_code`` (the CLI's
status: 2 when an input or a setting is wrong, 1 when the work itself failed). Pipelines record the class name
and message in their per-object reports.

| class | HTTP | exit |
|---|---|---|
| ColorizeError (anything else of ours) | 500 | 1 |
| InvalidImageError, EmptyImageError, TruncatedImageError | 400 | 2 |
| NotAnImageError, UnsupportedImageError | 415 | 2 |
| ImageTooLargeError | 413 | 2 |
| CheckpointError | 500 | 2 |
| pipelines: StorageError 502 / 2; InvalidVideoError 400 / 2; UnsupportedVideoError 415 / 2 |
| services: ApiError (its own status), UnauthorizedError 401, OverloadedError (and NotReadyError) 503 |
"""

from __future__ import annotations


class ColorizeError(Exception):
    """Base class of every error this project raises on purpose."""

    http_status: int = 500
    exit_code: int = 1


class InvalidImageError(ColorizeError):
    """The bytes are not a decodable image (not an image at all, or corrupt)."""

    http_status = 400
    exit_code = 2


class NotAnImageError(InvalidImageError):
    """The bytes are in no image format at all (e.g. text or JSON), as opposed to a damaged image."""

    http_status = 415


class EmptyImageError(InvalidImageError):
    """A zero-byte input."""


class TruncatedImageError(InvalidImageError):
    """The image header is valid but its data ends early."""


class UnsupportedImageError(ColorizeError):
    """A real image in a pixel mode the colorizer cannot interpret (e.g. floating-point ``F``)."""

    http_status = 415
    exit_code = 2


class ImageTooLargeError(ColorizeError):
    """The input exceeds the configured byte or pixel limit (this includes decompression bombs)."""

    http_status = 413
    exit_code = 2


class CheckpointError(ColorizeError):
    """A checkpoint file is missing, malformed or does not match its config."""

    exit_code = 2
