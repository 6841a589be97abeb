"""Streaming film I/O with PyAV: decode the video stream frame by frame, copy audio and subtitle packets into
the output unchanged (remuxed, never re-encoded), and encode the colorized frames with the input's own
timestamps. Nothing here holds more than one frame; the caller decides how many to batch.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

from model.color import srgb8_to_lightness
from pipelines.video.errors import InvalidVideoError, UnsupportedVideoError
from pipelines.video.options import VideoOptions

log = logging.getLogger(__name__)

COPIED_STREAM_TYPES = ("audio", "subtitle")
# Encoders used for codec="auto": the input's codec where FFmpeg can write it, else H.264.
_AUTO_ENCODERS = {"h264": "libx264", "hevc": "libx265", "vp9": "libvpx-vp9", "av1": "libsvtav1"}
_CRF_ENCODERS = {"libx264", "libx265", "libvpx-vp9", "libsvtav1", "libaom-av1"}
_PRESET_ENCODERS = {"libx264", "libx265"}
# AVColorSpace / AVColorPrimaries / AVColorTransferCharacteristic codes written into the output stream.
_BT709, _SMPTE170M, _UNSPECIFIED = 1, 6, 2
_CONTAINER_KEYS_NOT_COPIED = {"major_brand", "minor_version", "compatible_brands", "encoder"}


@dataclass(frozen=True)
class VideoInfo:
    """What a film holds, as far as the container says before decoding it."""

    width: int
    height: int
    fps: Fraction  # average frame rate
    time_base: Fraction  # of the video stream
    frames: int  # the container's frame count, or an estimate from duration x rate (0: unknown)
    duration: float  # seconds (0.0 when unknown)
    codec: str
    audio_streams: int
    subtitle_streams: int


@dataclass
class Frame:
    """One decoded picture: its position, timestamp and L* plane."""

    index: int
    pts: int
    lightness: np.ndarray  # (H, W) float32 L* in [0, 100]


def open_input(src: Path) -> Any:
    """Open a media file; anything FFmpeg cannot read, or a file without video, is an InvalidVideoError."""
    if not Path(src).is_file():
        raise FileNotFoundError(f"no such file: {src}")
    try:
        container = av.open(str(src), "r")
    except av.FFmpegError as exc:
        raise InvalidVideoError(f"{Path(src).name}: not a readable film ({exc})") from exc
    if not container.streams.video:
        container.close()
        raise InvalidVideoError(f"{Path(src).name}: no video stream")
    return container


def _stream_info(container: Any) -> VideoInfo:
    vs = container.streams.video[0]
    cc = vs.codec_context
    fps = Fraction(vs.average_rate or vs.guessed_rate or vs.base_rate or 25)
    time_base = Fraction(vs.time_base or Fraction(1, 90000))
    if vs.duration:
        duration = float(vs.duration * time_base)
    elif container.duration:
        duration = container.duration / av.time_base
    else:
        duration = 0.0
    frames = int(vs.frames or round(duration * fps))
    if not cc.width or not cc.height:
        raise InvalidVideoError("the video stream has no frame size")
    return VideoInfo(
        width=cc.width,
        height=cc.height,
        fps=fps,
        time_base=time_base,
        frames=frames,
        duration=duration,
        codec=cc.name,
        audio_streams=len(container.streams.audio),
        subtitle_streams=len(container.streams.subtitles),
    )


def probe(src: Path) -> VideoInfo:
    container = open_input(src)
    try:
        return _stream_info(container)
    finally:
        container.close()


@functools.lru_cache(maxsize=1)
def _grey_to_lightness() -> np.ndarray:
    """L* of each 8-bit grey level, from the model's own colour maths (a 256-entry table)."""
    return srgb8_to_lightness(np.arange(256, dtype=np.uint8)).astype(np.float32)


def lightness_of_frame(frame: Any) -> np.ndarray:
    """L* ``(H, W)`` float32 of a decoded frame: its full-range luma read as an sRGB grey level (exact for
    black-and-white film, where R = G = B; a tinted print keeps its luma)."""
    return _grey_to_lightness()[frame.to_ndarray(format="gray")]


def _pts(frame: Any, index: int, info: VideoInfo) -> int:
    if frame.pts is not None:
        return int(frame.pts)
    return round(index / (info.fps * info.time_base))  # raw streams: a constant rate from the first frame


def _decode(packet: Any, name: str) -> list[Any]:
    try:
        return list(packet.decode())
    except av.FFmpegError as exc:
        raise InvalidVideoError(f"{name}: corrupt video data ({exc})") from exc


def read_frames(src: Path) -> Iterator[Frame]:
    """Decode the video stream of ``src`` one frame at a time (the analysis pass)."""
    container = open_input(src)
    try:
        info = _stream_info(container)
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        index = 0
        for packet in container.demux(stream):
            for frame in _decode(packet, Path(src).name):
                yield Frame(index, _pts(frame, index, info), lightness_of_frame(frame))
                index += 1
    finally:
        container.close()


def _colour_tags(cc: Any, height: int) -> tuple[int, int]:
    """(swscale colour matrix, AVColorSpace code) for the output: the input's own when it says, else the
    convention players assume (BT.709 from 720 lines up, BT.601 below)."""
    if cc.colorspace == _BT709 or (cc.colorspace == _UNSPECIFIED and height >= 720):
        return Colorspace.ITU709, _BT709
    return Colorspace.ITU601, _SMPTE170M


def encoder_for(requested: str, input_codec: str) -> str:
    name = _AUTO_ENCODERS.get(input_codec, "libx264") if requested == "auto" else requested
    if name not in av.codecs_available:
        raise UnsupportedVideoError(f"this FFmpeg build has no {name!r} encoder")
    return name


class Transcoder:
    """Decode ``src``'s video while copying its audio and subtitle packets into ``dst``; encode the frames
    handed back with :meth:`write`. Use as a context manager; :meth:`frames` yields the decoded pictures."""

    def __init__(self, src: Path, dst: Path, options: VideoOptions) -> None:
        self.src, self.dst, self.options = Path(src), Path(dst), options
        self._in = open_input(self.src)
        self._out: Any = None
        try:
            self.info = _stream_info(self._in)
            self._vin = self._in.streams.video[0]
            self._vin.thread_type = "AUTO"
            try:
                self._out = av.open(str(self.dst), "w")
            except (ValueError, av.FFmpegError) as exc:
                raise UnsupportedVideoError(f"cannot write a film named {self.dst.name!r}: {exc}") from exc
            self._copy_metadata()
            self._vout = self._add_video_stream()
            self._copies: dict[int, Any] = {}
            self.dropped: list[str] = []
            for stream in self._in.streams:
                if stream.index != self._vin.index:
                    self._add_copy(stream)
            self._out.start_encoding()  # fail on an impossible stream now, not after colorizing the film
        except av.FFmpegError as exc:
            self.close(ok=False)
            raise UnsupportedVideoError(f"cannot write {self.dst.suffix} output: {exc}") from exc
        except BaseException:
            self.close(ok=False)
            raise
        self.frames_written = 0

    # ------------------------------------------------------------------------------------------ setup
    def _copy_metadata(self) -> None:
        for key, value in self._in.metadata.items():
            if key not in _CONTAINER_KEYS_NOT_COPIED:
                self._out.metadata[key] = value

    def _add_video_stream(self) -> Any:
        info, opts = self.info, self.options
        codec = encoder_for(opts.codec, info.codec)
        try:
            stream = self._out.add_stream(codec, rate=info.fps)
        except ValueError as exc:
            raise UnsupportedVideoError(f"{self.dst.suffix} cannot hold {codec} video: {exc}") from exc
        stream.width, stream.height = info.width, info.height
        odd = info.width % 2 or info.height % 2
        stream.pix_fmt = "yuv444p" if odd and opts.pix_fmt == "yuv420p" else opts.pix_fmt
        stream.time_base = info.time_base
        stream.codec_context.time_base = info.time_base  # the input's timestamps, unchanged
        self._matrix, space = _colour_tags(self._vin.codec_context, info.height)
        cc = stream.codec_context
        cc.colorspace, cc.color_primaries, cc.color_trc = space, space, space
        cc.color_range = ColorRange.MPEG
        options = {}
        if codec in _CRF_ENCODERS:
            options["crf"] = str(opts.crf)
        if codec in _PRESET_ENCODERS:
            options["preset"] = opts.encoder_preset
        if codec == "libvpx-vp9":
            options["b"] = "0"  # constant quality
        stream.options = options
        for key, value in self._vin.metadata.items():
            if key not in _CONTAINER_KEYS_NOT_COPIED and key != "handler_name":
                stream.metadata[key] = value
        return stream

    def _add_copy(self, stream: Any) -> None:
        label = f"#{stream.index} {stream.type}"
        if stream.type not in COPIED_STREAM_TYPES:
            self.dropped.append(f"{label} ({stream.type} streams are not copied)")
            return
        try:
            out = self._out.add_stream_from_template(stream)
        except (ValueError, av.FFmpegError) as exc:
            codec = stream.codec_context.name if stream.codec_context else "?"
            raise UnsupportedVideoError(
                f"{label} stream ({codec}) cannot be stored in a {self.dst.suffix} file (try .mkv): {exc}"
            ) from exc
        for key, value in stream.metadata.items():
            out.metadata[key] = value
        self._copies[stream.index] = out

    # ------------------------------------------------------------------------------------- streaming
    def frames(self) -> Iterator[Frame]:
        """Decoded video frames in presentation order; audio and subtitle packets met on the way are muxed
        into the output as they come (FFmpeg interleaves them with the video by timestamp)."""
        streams = [self._vin, *(self._in.streams[i] for i in self._copies)]
        index = 0
        name = self.src.name
        try:
            for packet in self._in.demux(streams):
                if packet.stream.index == self._vin.index:
                    for frame in _decode(packet, name):
                        yield Frame(index, _pts(frame, index, self.info), lightness_of_frame(frame))
                        index += 1
                elif packet.dts is not None:  # the empty flush packets at the end carry no timestamps
                    packet.stream = self._copies[packet.stream.index]
                    self._out.mux(packet)
        except av.FFmpegError as exc:
            raise InvalidVideoError(f"{name}: corrupt container ({exc})") from exc

    def write(self, rgb: np.ndarray, frame: Frame) -> None:
        """Encode one colorized picture ``(H, W, 3)`` uint8 at ``frame``'s timestamp."""
        picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        picture = picture.reformat(
            format=self._vout.pix_fmt, dst_colorspace=self._matrix, dst_color_range=ColorRange.MPEG
        )
        picture.pts = frame.pts
        picture.time_base = self.info.time_base
        self._out.mux(self._vout.encode(picture))
        self.frames_written += 1

    def close(self, ok: bool = True) -> None:
        """Flush the encoder and finish the file (``ok``), or just release everything after a failure."""
        try:
            if ok and self._out is not None:
                self._out.mux(self._vout.encode(None))
        finally:
            if self._out is not None:
                self._out.close()
                self._out = None
            self._in.close()

    def __enter__(self) -> Transcoder:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if self._out is not None:
            self.close(ok=exc_type is None)
