"""Typed options of the video colorizer: temporal consistency, scene cuts, batching and encoding."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

FLOW_PRESETS = ("ultrafast", "fast", "medium")


@dataclass(frozen=True)
class VideoOptions:
    """How a film is colorized. The defaults give steady colour on a CPU-only machine and on a GPU."""

    # --- temporal consistency -------------------------------------------------------------------------
    temporal: bool = True  # False: colorize every frame on its own (the per-frame baseline)
    shot_style: bool = True  # share global features within a shot (an analysis pass over the film first)
    style_window: float | None = 2.0  # seconds each side averaged into a frame's style; None: the whole shot
    style_stride: int = 1  # analyse every Nth frame's global features (1 = all)
    filter_strength: float = 0.85  # weight of the motion-compensated previous a*b* (0 turns the filter off)
    luma_sigma: float = 4.0  # L* mismatch after warping at which trust in the past falls to exp(-1/2)
    flow_preset: str = "fast"  # DIS optical flow preset for the filter: ultrafast | fast | medium
    # --- scene cuts -----------------------------------------------------------------------------------
    cut_threshold: float = 0.12  # mean |ΔL*|/100 between consecutive thumbnails that counts as a cut
    cut_ratio: float = 3.0  # ... and at least this many times the recent average change (camera motion)
    # --- throughput -----------------------------------------------------------------------------------
    batch_size: int = 8  # frames per network call (and the most frames held in memory at once)
    # --- encoding -------------------------------------------------------------------------------------
    codec: str = "libx264"  # an FFmpeg encoder, or "auto": the input's codec where an encoder exists
    crf: int = 18  # constant rate factor (lower = better; 18 is visually lossless for x264)
    encoder_preset: str = "medium"  # x264/x265 speed preset
    pix_fmt: str = "yuv420p"  # the most widely playable; odd frame sizes switch to yuv444p

    def __post_init__(self) -> None:
        if self.style_window is not None and self.style_window <= 0:
            raise ValueError(f"style_window must be positive seconds or None, got {self.style_window}")
        if self.style_stride < 1:
            raise ValueError(f"style_stride must be >= 1, got {self.style_stride}")
        if not 0.0 <= self.filter_strength < 1.0:
            raise ValueError(f"filter_strength must be in [0, 1), got {self.filter_strength}")
        if self.luma_sigma <= 0:
            raise ValueError(f"luma_sigma must be positive, got {self.luma_sigma}")
        if self.flow_preset not in FLOW_PRESETS:
            raise ValueError(f"flow_preset must be one of {FLOW_PRESETS}, got {self.flow_preset!r}")
        if not 0.0 < self.cut_threshold <= 1.0:
            raise ValueError(f"cut_threshold must be in (0, 1], got {self.cut_threshold}")
        if self.cut_ratio < 1.0:
            raise ValueError(f"cut_ratio must be >= 1, got {self.cut_ratio}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0 <= self.crf <= 63:
            raise ValueError(f"crf must be in [0, 63], got {self.crf}")

    @property
    def stabilise(self) -> bool:
        """Whether a*b* are filtered over time."""
        return self.temporal and self.filter_strength > 0.0

    @property
    def uses_shot_style(self) -> bool:
        return self.temporal and self.shot_style

    def replace(self, **changes: Any) -> VideoOptions:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
