"""Hard scene-cut detection on L* thumbnails.

A cut is a frame whose thumbnail differs from the previous one by more than an absolute threshold *and* by
several times the recent average change, so fast camera motion (large but sustained change) is not a cut
while a splice (a sudden spike) is. Dissolves are gradual and are not cuts: the style window and the
luminance-checked temporal filter follow them smoothly instead.
"""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np

THUMB_WIDTH = 64


def thumbnail(lightness: np.ndarray, width: int = THUMB_WIDTH) -> np.ndarray:
    """A small L*/100 copy ``(h, width)`` float32 of an L* plane."""
    h, w = lightness.shape
    height = max(1, round(width * h / w))
    small = cv2.resize(np.asarray(lightness, np.float32), (width, height), interpolation=cv2.INTER_AREA)
    return small / 100.0


class CutDetector:
    """Feed frames in order; :meth:`is_cut` says whether each one starts a new shot (the first one does)."""

    def __init__(self, threshold: float = 0.12, ratio: float = 3.0, history: int = 8) -> None:
        self.threshold = threshold
        self.ratio = ratio
        self._recent: deque[float] = deque(maxlen=history)
        self._previous: np.ndarray | None = None
        self.last_score = 0.0

    def score(self, thumb: np.ndarray) -> float:
        """Mean absolute L* change (0..1) from the previous thumbnail."""
        if self._previous is None or self._previous.shape != thumb.shape:
            return 1.0
        return float(np.abs(thumb - self._previous).mean())

    def is_cut(self, lightness: np.ndarray) -> bool:
        thumb = thumbnail(lightness)
        first = self._previous is None
        score = self.score(thumb)
        recent = float(np.mean(self._recent)) if self._recent else 0.0
        cut = first or (score > self.threshold and score > self.ratio * recent)
        self._previous = thumb
        self.last_score = score
        if cut:
            self._recent.clear()  # a new shot: forget the old one's motion
        else:
            self._recent.append(score)
        return cut
