"""Flicker and fidelity measures for colorized films.

**Warping error** (Lai et al., "Learning Blind Video Temporal Consistency", ECCV 2018): optical flow between
consecutive *input* frames maps frame t onto frame t-1; the error is the mean squared RGB difference (values
in [0, 1], summed over channels) between frame t-1 and the warped frame t, over the pixels that stay visible
(forward-backward consistency and motion-boundary checks of Ruder et al. 2016), averaged over all frame pairs.
Flow comes from OpenCV's Farneback (or DIS) on the greyscale input, never from the outputs being compared,
so every output of the same film is measured against the same motion.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import cv2
import numpy as np

from model.color import srgb8_to_ab
from pipelines.video.io import open_input


def optical_flow(prev: np.ndarray, nxt: np.ndarray, method: str = "farneback") -> np.ndarray:
    """Dense flow ``(H, W, 2)`` from grey uint8 ``prev`` to ``nxt``: ``prev(x) ~ nxt(x + flow(x))``."""
    if method == "farneback":
        flow = np.zeros((*prev.shape[:2], 2), np.float32)
        return cv2.calcOpticalFlowFarneback(prev, nxt, flow, 0.5, 4, 15, 3, 5, 1.2, 0)
    if method == "dis":
        dis = cv2.DISOpticalFlow.create(cv2.DISOpticalFlow_PRESET_MEDIUM)
        return dis.calc(prev, nxt, np.zeros((*prev.shape[:2], 2), np.float32))
    raise ValueError(f"unknown flow method {method!r}; choose farneback or dis")


def _sample(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(image, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def visible_mask(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Pixels of the first frame that are visible in the second: inside the frame, forward-backward
    consistent and not on a motion boundary (Ruder et al. 2016, as used by Lai et al. 2018)."""
    h, w = forward.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    tx, ty = xs + forward[..., 0], ys + forward[..., 1]
    inside = (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    back = _sample(backward, forward)
    round_trip = ((forward + back) ** 2).sum(-1)
    consistent = round_trip < 0.01 * ((forward**2).sum(-1) + (back**2).sum(-1)) + 0.5
    du = np.gradient(forward[..., 0])
    dv = np.gradient(forward[..., 1])
    gradient = du[0] ** 2 + du[1] ** 2 + dv[0] ** 2 + dv[1] ** 2
    boundary = gradient > 0.01 * (forward**2).sum(-1) + 0.002
    return inside & consistent & ~boundary


class WarpingError:
    """Streaming warping error of several outputs of one film, sharing the input's flow.

    Call :meth:`add` with each input frame (grey uint8) and the matching RGB uint8 output of every method.
    :meth:`result` is Lai et al.'s measure (RGB in [0, 1]); :meth:`chroma_result` is the same over a*b* only
    (mean squared ΔE of the chroma): every output here keeps the input's L*, so this isolates the flicker
    that colorization adds, which the RGB measure mixes with the input's own grain and exposure flicker.
    """

    def __init__(self, method: str = "farneback") -> None:
        self.method = method
        self._prev_guide: np.ndarray | None = None
        self._prev: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._sums: dict[str, list[float]] = {}
        self.pairs = 0
        self.visible_fraction = 0.0

    def add(self, guide: np.ndarray, outputs: Mapping[str, np.ndarray], new_shot: bool = False) -> None:
        """``new_shot``: this frame follows a cut, so it is not compared with the previous one."""
        frames = {k: (np.asarray(v, np.float32) / 255.0, srgb8_to_ab(v).transpose(1, 2, 0)) for k, v in outputs.items()}
        if self._prev_guide is not None and not new_shot:
            fwd = optical_flow(self._prev_guide, guide, self.method)
            bwd = optical_flow(guide, self._prev_guide, self.method)
            mask = visible_mask(fwd, bwd)
            n = int(mask.sum())
            if n:
                for name, pair in frames.items():
                    sums = self._sums.setdefault(name, [0.0, 0.0])
                    for k, (before, now) in enumerate(zip(self._prev[name], pair, strict=True)):
                        diff = before - _sample(now, fwd)
                        sums[k] += float(((diff**2).sum(-1) * mask).sum() / n)
                self.visible_fraction += n / mask.size
                self.pairs += 1
        self._prev_guide = guide
        self._prev = frames

    def result(self) -> dict[str, float]:
        """Mean warping error per output, RGB (0 when no pair could be compared)."""
        return {name: sums[0] / max(self.pairs, 1) for name, sums in self._sums.items()}

    def chroma_result(self) -> dict[str, float]:
        """Mean warping error per output over a*b* (squared ΔE units)."""
        return {name: sums[1] / max(self.pairs, 1) for name, sums in self._sums.items()}


def warping_error(
    frames: Iterable[np.ndarray], guides: Iterable[np.ndarray] | None = None, method: str = "farneback"
) -> float:
    """Warping error of one sequence of RGB uint8 frames; flow from ``guides`` (grey uint8), or from the
    frames' own greyscale when none are given."""
    meter = WarpingError(method)
    guide_iter = iter(guides) if guides is not None else None
    for frame in frames:
        guide = next(guide_iter) if guide_iter is not None else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        meter.add(guide, {"x": frame})
    return meter.result().get("x", 0.0)


def _grey_frames(path: Path) -> Iterable[np.ndarray]:
    container = open_input(path)
    try:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="gray")
    finally:
        container.close()


def _rgb_frames(path: Path) -> Iterable[np.ndarray]:
    container = open_input(path)
    try:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")
    finally:
        container.close()


def video_warping_error(
    outputs: Mapping[str, Path],
    source: Path,
    method: str = "farneback",
    cuts: Iterable[int] = (),
    include_source: bool = False,
) -> WarpingError:
    """Warping error of each colorized film in ``outputs`` (same frames as ``source``), flow from ``source``;
    frame pairs across the given ``cuts`` (first frames of shots) are skipped. ``include_source`` adds the
    greyscale input itself as ``"source"`` (the input's own flicker: grain, dust, exposure). Streams all
    files at once; read :meth:`WarpingError.result` and :meth:`WarpingError.chroma_result`."""
    meter = WarpingError(method)
    cut_set = set(cuts)
    readers = {name: iter(_rgb_frames(Path(p))) for name, p in outputs.items()}
    for index, guide in enumerate(_grey_frames(Path(source))):
        frames = {name: next(r, None) for name, r in readers.items()}
        if any(f is None for f in frames.values()):
            raise ValueError(f"an output has fewer frames than the source ({index})")
        if include_source:
            frames["source"] = np.repeat(guide[..., None], 3, axis=-1)
        meter.add(guide, frames, new_shot=index in cut_set)  # type: ignore[arg-type]
    return meter
