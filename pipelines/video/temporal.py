"""Temporal consistency: one style per shot and motion-compensated filtering of a*b*.

Two mechanisms keep colours steady from frame to frame:

1. **Shot style.** An analysis pass records each frame's global feature vector (the network's view of the
   whole scene, :meth:`Colorizer.global_features`) and the scene cuts. When colorizing, every frame gets the
   average vector of its shot within ``style_window`` seconds (or of the whole shot) through the
   style-transfer path, so the global half of the network no longer changes its mind frame by frame, while
   dissolves and long pans still move smoothly from one scene's colours to the next. Vectors are spilled to a
   temporary file and read back as a sliding window: memory stays flat whatever the film's length.
2. **Chroma stabilisation.** A recursive filter blends each frame's predicted a*b* with the previous output
   warped along dense optical flow (OpenCV DIS), weighted per pixel by how well the warped previous L* matches
   the current one (occlusions, lighting changes and flow errors fall back to the new prediction). It resets at
   every cut.
"""

from __future__ import annotations

import tempfile
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import cv2
import numpy as np

from pipelines.video.cuts import CutDetector
from pipelines.video.io import Frame
from pipelines.video.options import VideoOptions

_DIS_PRESETS = {
    "ultrafast": cv2.DISOpticalFlow_PRESET_ULTRAFAST,
    "fast": cv2.DISOpticalFlow_PRESET_FAST,
    "medium": cv2.DISOpticalFlow_PRESET_MEDIUM,
}
_READ_ROWS = 256


class StyleTrack:
    """Shot cuts and per-frame global vectors of one film, written once in frame order, read back in order."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.row = np.dtype([("frame", "<i8"), ("shot", "<i8"), ("vector", "<f4", (dim,))])
        self.cuts: list[int] = []  # first frame of every shot (O(shots) memory)
        self.frames = 0
        self.samples = 0
        self._shot_sums: list[np.ndarray] = []
        self._shot_counts: list[int] = []
        self._file = tempfile.TemporaryFile(prefix="colorize-style-")  # noqa: SIM115 (closed by close())

    @property
    def shots(self) -> int:
        return len(self.cuts)

    def add(self, frames: list[int], shots: list[int], vectors: np.ndarray) -> None:
        rows = np.empty(len(frames), dtype=self.row)
        rows["frame"], rows["shot"], rows["vector"] = frames, shots, vectors
        self._file.write(rows.tobytes())
        self.samples += len(frames)
        for shot, vector in zip(shots, vectors, strict=True):
            while len(self._shot_sums) <= shot:
                self._shot_sums.append(np.zeros(self.dim, np.float64))
                self._shot_counts.append(0)
            self._shot_sums[shot] += vector
            self._shot_counts[shot] += 1

    def shot_mean(self, shot: int) -> np.ndarray:
        return (self._shot_sums[shot] / max(self._shot_counts[shot], 1)).astype(np.float32)

    def rows(self) -> Iterable[np.ndarray]:
        """The recorded rows in frame order, a few hundred at a time."""
        self._file.flush()
        self._file.seek(0)
        while True:
            chunk = self._file.read(_READ_ROWS * self.row.itemsize)
            if not chunk:
                return
            yield np.frombuffer(chunk, dtype=self.row)

    def close(self) -> None:
        self._file.close()


def analyse(
    frames: Iterable[Frame],
    colorizer: Any,
    options: VideoOptions,
    on_frame: Callable[[], None] | None = None,
) -> StyleTrack:
    """The analysis pass: scene cuts and global vectors (of every ``style_stride``-th frame and of the first
    frame of every shot) for a whole film. ``colorizer`` must have a global path (``global_dim > 0``)."""
    detector = CutDetector(options.cut_threshold, options.cut_ratio)
    track = StyleTrack(colorizer.global_dim)
    planes: list[np.ndarray] = []
    indices: list[int] = []
    shots: list[int] = []

    def flush() -> None:
        if planes:
            track.add(indices, shots, colorizer.global_features(planes))
        planes.clear()
        indices.clear()
        shots.clear()

    for frame in frames:
        if detector.is_cut(frame.lightness):
            track.cuts.append(frame.index)
        if frame.index % options.style_stride == 0 or track.cuts[-1] == frame.index:
            planes.append(frame.lightness)
            indices.append(frame.index)
            shots.append(track.shots - 1)
            if len(planes) >= options.batch_size:
                flush()
        track.frames += 1
        if on_frame is not None:
            on_frame()
    flush()
    return track


class ShotStyles:
    """The style vector of each frame, asked for in frame order: the mean of its shot's recorded vectors
    within ``half_window`` frames either side, or over the whole shot when ``half_window`` is None."""

    def __init__(self, track: StyleTrack, half_window: int | None) -> None:
        self.track = track
        self.half_window = half_window
        self._rows = iter(track.rows()) if half_window is not None else iter(())
        self._window: deque[tuple[int, int, np.ndarray]] = deque()
        self._exhausted = half_window is None

    def _read_until(self, frame: int) -> None:
        while not self._exhausted and (not self._window or self._window[-1][0] <= frame):
            chunk = next(self._rows, None)
            if chunk is None:
                self._exhausted = True
                return
            self._window.extend((int(r["frame"]), int(r["shot"]), np.array(r["vector"])) for r in chunk)

    def vector(self, frame: int, shot: int) -> np.ndarray:
        if self.half_window is None:
            return self.track.shot_mean(shot)
        self._read_until(frame + self.half_window)
        while self._window and self._window[0][0] < frame - self.half_window:
            self._window.popleft()
        near = [v for f, s, v in self._window if s == shot and abs(f - frame) <= self.half_window]
        if not near:
            return self.track.shot_mean(shot)
        return np.mean(near, axis=0).astype(np.float32)


def half_resolution(
    lightness: np.ndarray, shape: tuple[int, int], working: tuple[int, int] | None = None
) -> np.ndarray:
    """L* at the chroma's resolution ``shape`` (h, w): reduced to the ``working`` size (h, w) the network saw,
    padded like the network input, then averaged 2x2."""
    if working is not None and tuple(working) != lightness.shape:
        lightness = cv2.resize(np.asarray(lightness, np.float32), working[::-1], interpolation=cv2.INTER_AREA)
    h, w = shape
    pad_h, pad_w = 2 * h - lightness.shape[0], 2 * w - lightness.shape[1]
    assert pad_h >= 0 and pad_w >= 0, f"chroma {shape} is smaller than half of L* {lightness.shape}"
    padded = np.pad(np.asarray(lightness, np.float32), ((0, pad_h), (0, pad_w)), mode="edge")
    return cv2.resize(padded, (w, h), interpolation=cv2.INTER_AREA)


class ChromaStabiliser:
    """Recursive, flow-guided, luminance-checked filtering of a*b* over time, reset at cuts."""

    def __init__(self, strength: float = 0.85, luma_sigma: float = 4.0, flow_preset: str = "fast") -> None:
        self.strength = strength
        self.luma_sigma = luma_sigma
        self._flow = cv2.DISOpticalFlow.create(_DIS_PRESETS[flow_preset])
        self._prev: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (L* half, L* uint8, ab (h,w,2))
        self._grid: tuple[np.ndarray, np.ndarray] | None = None

    def reset(self) -> None:
        self._prev = None

    def _coords(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        if self._grid is None or self._grid[0].shape != (h, w):
            ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
            self._grid = (xs, ys)
        return self._grid

    def __call__(
        self, lightness: np.ndarray, ab: np.ndarray, new_shot: bool, working: tuple[int, int] | None = None
    ) -> np.ndarray:
        """Filtered a*b* ``(2, h, w)`` float32 for a frame's L* ``(H, W)`` and predicted a*b* ``(2, h, w)``
        (predicted from L* at the ``working`` size (h, w), default: the frame's own)."""
        ab_hwc = np.ascontiguousarray(np.moveaxis(np.asarray(ab, np.float32), 0, -1))  # (h, w, 2)
        lum = half_resolution(lightness, ab_hwc.shape[:2], working)
        lum8 = np.clip(lum * 2.55 + 0.5, 0, 255).astype(np.uint8)
        if new_shot or self._prev is None or self._prev[0].shape != lum.shape:
            self._prev = (lum, lum8, ab_hwc)
            return np.moveaxis(ab_hwc, -1, 0)
        prev_lum, prev_lum8, prev_ab = self._prev
        # Backward flow: current pixel x sits at x + flow(x) in the previous frame.
        flow = self._flow.calc(lum8, prev_lum8, None)  # type: ignore[call-overload]
        xs, ys = self._coords(*lum.shape)
        map_x, map_y = xs + flow[..., 0], ys + flow[..., 1]
        warped_ab = cv2.remap(prev_ab, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        warped_lum = cv2.remap(prev_lum, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        h, w = lum.shape
        inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
        trust = np.exp(-0.5 * ((lum - warped_lum) / self.luma_sigma) ** 2) * inside
        weight = (self.strength * trust)[..., None]
        out = weight * warped_ab + (1.0 - weight) * ab_hwc
        out = out.astype(np.float32)
        self._prev = (lum, lum8, out)
        return np.moveaxis(out, -1, 0)
