"""``colorize_video``: a film in, the same film in colour out (same frames, timestamps, audio and subtitles).

The predictor sees batches of L* planes (the network runs at its working size); decoding, scene-cut detection,
optical flow on the chroma grid, and encoding run on CPUs, and the predictor recombines each frame's filtered
chroma with its full-resolution L* (:meth:`model.Colorizer.compose`). At most ``batch_size``
decoded frames are held at once, so memory is flat whatever the film's length.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.video.cuts import CutDetector
from pipelines.video.errors import InvalidVideoError
from pipelines.video.io import Frame, Transcoder, VideoInfo, probe, read_frames
from pipelines.video.options import VideoOptions
from pipelines.video.temporal import ChromaStabiliser, ShotStyles, StyleTrack, analyse

log = logging.getLogger(__name__)


def _progress_bar(enabled: bool, total: int, desc: str) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total or None, desc=desc, unit="frame", dynamic_ncols=True, leave=True)


def _part_path(dst: Path) -> Path:
    """Where the output is written until it is complete (same folder and extension, so the same muxer)."""
    return dst.with_name(f".{dst.stem}.part{dst.suffix}")


class _FilmPass:
    """Per-film state of the colorizing pass: shot tracking, style vectors and the chroma filter."""

    def __init__(self, colorizer: Any, options: VideoOptions, track: StyleTrack | None, fps: float) -> None:
        self.colorizer = colorizer
        self.options = options
        self.track = track
        self.cut_frames = set(track.cuts) if track is not None else None
        self.detector = CutDetector(options.cut_threshold, options.cut_ratio) if track is None else None
        half = None if options.style_window is None else max(1, round(options.style_window * fps))
        self.styles = ShotStyles(track, half) if track is not None else None
        self.stabiliser = (
            ChromaStabiliser(options.filter_strength, options.luma_sigma, options.flow_preset)
            if options.stabilise
            else None
        )
        self.shot = -1
        self.shots = 0

    def _new_shot(self, frame: Frame) -> bool:
        if self.cut_frames is not None:
            cut = frame.index in self.cut_frames
        elif self.detector is not None and self.options.temporal:
            cut = self.detector.is_cut(frame.lightness)
        else:
            cut = frame.index == 0
        if cut:
            self.shot += 1
            self.shots += 1
        return cut

    def __call__(self, batch: list[Frame]) -> list[np.ndarray]:
        cuts = [self._new_shot(f) for f in batch]
        shots = np.cumsum(cuts) + self.shot - sum(cuts)  # the shot of each frame in the batch
        planes = [f.lightness for f in batch]
        style = None
        if self.styles is not None:
            style = np.stack([self.styles.vector(f.index, int(s)) for f, s in zip(batch, shots, strict=True)])
        chroma = self.colorizer.predict_chroma(planes, style=style)
        out = []
        for frame, pred, cut in zip(batch, chroma, cuts, strict=True):
            if self.stabiliser is not None:
                working = (pred.grid.height, pred.grid.width)
                pred = dataclasses.replace(pred, ab=self.stabiliser(frame.lightness, pred.ab, cut, working))
            out.append(self.colorizer.compose(frame.lightness, pred))
        return out


def colorize_video(
    src: Path,
    dst: Path,
    colorizer: Any,
    options: VideoOptions = VideoOptions(),
    progress: bool = False,
    on_frame: Callable[[np.ndarray, Frame], None] | None = None,
) -> dict[str, Any]:
    """Colorize the film ``src`` into ``dst`` (container chosen by ``dst``'s extension) and return a summary.

    ``colorizer`` is the shared :class:`model.Colorizer`. Audio and subtitle streams are copied unchanged;
    the output keeps the input's frame size, rate, timestamps and duration. ``on_frame(rgb, frame)``, when
    given, sees every colorized picture (previews, metrics). The output appears only when complete.
    Raises :class:`InvalidVideoError` (unreadable input) or :class:`UnsupportedVideoError` (output that
    cannot be written as asked); a failed run leaves no partial file behind.
    """
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise ValueError("the output must not overwrite the input")
    started = time.perf_counter()
    info = probe(src)
    dst.parent.mkdir(parents=True, exist_ok=True)
    part = _part_path(dst)
    track: StyleTrack | None = None
    try:
        with Transcoder(src, part, options) as transcoder:
            if options.uses_shot_style and colorizer.global_dim > 0:  # baselines have no global path
                track = _analyse(src, colorizer, options, _progress_bar(progress, info.frames, "analysing"))
            analysed = time.perf_counter()
            film = _FilmPass(colorizer, options, track, float(info.fps))
            bar = _progress_bar(progress, info.frames, "colorizing")
            _colorize_frames(transcoder, film, options.batch_size, bar, on_frame)
            frames = transcoder.frames_written
            dropped = list(transcoder.dropped)
        if frames == 0:
            raise InvalidVideoError(f"{src.name}: the video stream has no decodable frames")
        part.replace(dst)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    finally:
        if track is not None:
            track.close()
    return _summary(src, dst, info, film, frames, dropped, (started, analysed, time.perf_counter()))


def _summary(
    src: Path,
    dst: Path,
    info: VideoInfo,
    film: _FilmPass,
    frames: int,
    dropped: list[str],
    times: tuple[float, float, float],
) -> dict[str, Any]:
    """What :func:`colorize_video` returns; ``times``: when the run started, finished analysing, and ended."""
    started, analysed, ended = times
    seconds = ended - started
    track, options, colorizer = film.track, film.options, film.colorizer
    out = probe(dst)
    return {
        "input": str(src),
        "output": str(dst),
        "frames": frames,
        "fps": float(info.fps),
        "duration": out.duration,
        "width": out.width,
        "height": out.height,
        "codec": out.codec,
        "audio_streams": out.audio_streams,
        "subtitle_streams": out.subtitle_streams,
        "dropped_streams": dropped,
        "shots": film.shots,
        "cuts": sorted(track.cuts) if track is not None else None,
        "temporal": options.temporal,
        "seconds": round(seconds, 3),
        "analysis_seconds": round(analysed - started, 3),
        "frames_per_second": round(frames / seconds, 3) if seconds > 0 else None,
        "model": colorizer.model_name,
        "trained": bool(colorizer.trained),
    }


def _analyse(src: Path, colorizer: Any, options: VideoOptions, bar: Any) -> StyleTrack:
    """The first pass: shot cuts and per-shot style vectors over the whole film (see :func:`analyse`)."""
    track = analyse(read_frames(src), colorizer, options, bar.update if bar else None)
    if bar:
        bar.close()
    return track


def _colorize_frames(
    transcoder: Transcoder,
    film: _FilmPass,
    batch_size: int,
    bar: Any,
    on_frame: Callable[[np.ndarray, Frame], None] | None,
) -> None:
    """The second pass: decoded frames in batches of ``batch_size`` through ``film``, written as they come."""
    batch: list[Frame] = []

    def flush() -> None:
        if not batch:
            return
        for rgb, frame in zip(film(batch), batch, strict=True):
            transcoder.write(rgb, frame)
            if on_frame is not None:
                on_frame(rgb, frame)
        if bar:
            bar.update(len(batch))
        batch.clear()

    for frame in transcoder.frames():
        batch.append(frame)
        if len(batch) >= batch_size:
            flush()
    flush()
    if bar:
        bar.close()
