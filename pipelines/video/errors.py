"""Domain errors of the video colorizer; subclasses of :class:`model.errors.ColorizeError`, so every caller
that already handles the model's errors (the archive job, the CLI) handles these too."""

from __future__ import annotations

from model.errors import ColorizeError


class VideoError(ColorizeError):
    """Base class of the video colorizer's errors."""

    http_status = 400
    exit_code = 2


class InvalidVideoError(VideoError):
    """The input is not a readable film: not a media file, corrupt, or without a video stream."""


class UnsupportedVideoError(VideoError):
    """A readable film that cannot be written as asked (e.g. a stream the output container cannot hold)."""

    http_status = 415
