"""Colorize black-and-white films: steady colour across frames, audio and subtitles kept.

``colorize_video(src, dst, colorizer, options)`` streams a film through the shared predictor in frame
batches; :class:`VideoOptions` configures temporal consistency (shot styles, flow-guided chroma filtering),
scene cuts, batching and encoding. :mod:`pipelines.video.metrics` measures flicker (warping error) and
fidelity (PSNR).
"""

from pipelines.video.errors import InvalidVideoError, UnsupportedVideoError, VideoError
from pipelines.video.io import VideoInfo, probe
from pipelines.video.options import VideoOptions
from pipelines.video.pipeline import colorize_video

__all__ = [
    "InvalidVideoError",
    "UnsupportedVideoError",
    "VideoError",
    "VideoInfo",
    "VideoOptions",
    "colorize_video",
    "probe",
]
