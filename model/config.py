"""Typed configuration of the fusion colorization network (Iizuka, Simo-Serra & Ishikawa, 2016).

One dataclass describes the whole family; named presets give the published network (``paper``) and smaller
variants for CPU use. Checkpoints carry ``to_dict()`` so a model is always rebuilt exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# The encoder downsamples three times by 2 (low-level network), so inputs are padded to a multiple of 8;
# the decoder upsamples twice, so chroma comes out at half the padded input resolution.
STRIDE = 8


WORKING_SIZE = 768  # default longest side the network sees (PredictorConfig.working_size): BENCHMARKS.md
MAX_CHROMA_GAIN = 4.0  # largest a*b* multiplier any entry point accepts
MAX_NEUTRAL = 0.5  # largest share of pixels the neutral floor may be taken from (model/neutral.py)


@dataclass(frozen=True)
class FusionConfig:
    """Architecture of the global + local fusion network. Channel counts are the paper's times ``width``."""

    width: float = 1.0  # multiplier on every hidden channel count and fully connected size
    global_size: int = 224  # side of the square copy the global path sees; a multiple of 32
    num_classes: int = 205  # classification head outputs (205 = Places scene categories in the paper)
    class_names: tuple[str, ...] = ()  # optional names for the classification outputs
    name: str = "custom"  # preset name, for model cards and `colorize info`
    # > 0: a per-pixel confidence head, and a*b* pulled towards neutral where it expects a large error, this
    # strongly (model/network.py, ColorizationNetwork); 0: the published network, no head
    confidence: float = 0.0
    # > 0: a distribution head over quantised a*b* beside the regression (Zhang et al.'s bins), and each
    # pixel's a*b* moved this far towards the head's annealed mean where the head is sure (model/network.py,
    # DistributionHead); 0: the published network, no head
    distribution: float = 0.0
    # True: each photo's decoded a*b* scaled by one factor read from the distribution head's expected chroma,
    # fitted on training photos (model/chroma_level.py; `colorize calibrate --fit-level`); needs distribution > 0
    chroma_level: bool = False

    def __post_init__(self) -> None:
        if self.chroma_level and self.distribution <= 0:
            raise ValueError("chroma_level reads the distribution head: it needs distribution > 0")
        if self.confidence < 0:
            raise ValueError(f"confidence must be >= 0, got {self.confidence}")
        if not 0.0 <= self.distribution <= 1.0:
            raise ValueError(f"distribution is a blend weight in [0, 1], got {self.distribution}")
        if not 0.0 < self.width <= 4.0:
            raise ValueError(f"width must be in (0, 4], got {self.width}")
        if self.global_size < 32 or self.global_size % 32:
            raise ValueError(f"global_size must be a positive multiple of 32, got {self.global_size}")
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {self.num_classes}")
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError(f"class_names has {len(self.class_names)} entries but num_classes is {self.num_classes}")

    def ch(self, channels: int) -> int:
        """Scale a paper channel count by the width multiplier (at least 8 channels)."""
        return max(8, int(round(channels * self.width)))

    @property
    def global_grid(self) -> int:
        """Side of the global path's final feature map (7 for 224 input)."""
        return self.global_size // 32

    def replace(self, **changes: Any) -> FusionConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["class_names"] = list(self.class_names)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FusionConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown FusionConfig fields: {sorted(unknown)}")
        values = dict(data)
        if "class_names" in values:
            values["class_names"] = tuple(values["class_names"])
        return cls(**values)


PRESETS: dict[str, FusionConfig] = {
    # The published network: ~42.4M parameters with 205 classes.
    "paper": FusionConfig(width=1.0, global_size=224, num_classes=205, name="paper"),
    # Half width (~1/4 of the compute and ~10.8M parameters): fits a 25 MiB fp16 checkpoint with room to spare.
    "small": FusionConfig(width=0.5, global_size=224, num_classes=205, name="small"),
    # Quarter width with a 128 px global copy: trains on a laptop CPU in minutes.
    "tiny": FusionConfig(width=0.25, global_size=128, num_classes=205, name="tiny"),
    # For unit tests only: a few thousand parameters.
    "test": FusionConfig(width=0.0625, global_size=64, num_classes=8, name="test"),
}

DEFAULT_PRESET = "tiny"


def get_preset(name: str, **overrides: Any) -> FusionConfig:
    """Return a named preset, optionally with fields overridden. Unknown names fail loudly."""
    try:
        base = PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}") from None
    return base.replace(**overrides) if overrides else base


@dataclass(frozen=True)
class ImageLimits:
    """What the decoder accepts. Everything above is an ``ImageTooLargeError`` before any pixel is decoded."""

    max_bytes: int = 256 * 1024 * 1024
    max_pixels: int = 100_000_000  # 100 MP: larger than any common scan, far below a decompression bomb

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.max_pixels <= 0:
            raise ValueError("image limits must be positive")


@dataclass(frozen=True)
class PredictorConfig:
    """The pixel path's settings, defined once: every entry point (CLI, bulk job, API, video, eval) builds its
    predictor from one of these: device, precision, batching, working resolution, chroma upsampling, gain."""

    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16 | fp16
    max_batch_size: int = 16  # images per forward pass within one size bucket
    max_batch_pixels: int = 16_000_000  # and at most this many input pixels per pass (bounds memory)
    # Longest side of the L* plane the network sees (larger inputs are reduced, chroma is brought back to full
    # size guided by the full-resolution L*, which is never changed); None = the input's own size. Chroma is
    # low-frequency: see BENCHMARKS.md "Working resolution" for the measured quality and cost of each size.
    working_size: int | None = WORKING_SIZE
    upsample: str = "guided"  # guided (luminance-guided, edge-aware) | bilinear
    top_k: int = 3  # classification labels returned per image
    # a*b* multiplier (saturation); None: the checkpoint's calibrated value (1.0 when it has none)
    chroma_gain: float | None = None
    # share of each prediction's least colourful pixels whose mean tint is removed (model/neutral.py);
    # None: the checkpoint's value (0, off, when it has none)
    neutral: float | None = None
    limits: ImageLimits = field(default_factory=ImageLimits)
    # what runs the network: torch (eager) | onnxruntime (the `onnx` extra; an exported graph, see model/export.py)
    backend: str = "torch"

    def __post_init__(self) -> None:
        if self.backend not in {"torch", "onnxruntime"}:
            raise ValueError(f"backend must be torch|onnxruntime, got {self.backend!r}")
        if self.precision not in {"auto", "fp32", "bf16", "fp16"}:
            raise ValueError(f"precision must be auto|fp32|bf16|fp16, got {self.precision!r}")
        if self.upsample not in {"bilinear", "guided"}:
            raise ValueError(f"upsample must be bilinear|guided, got {self.upsample!r}")
        if self.max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1")
        if self.working_size is not None and self.working_size < STRIDE:
            raise ValueError(f"working_size must be >= {STRIDE} (or None for full resolution), got {self.working_size}")
        if self.chroma_gain is not None and not 0.0 <= self.chroma_gain <= MAX_CHROMA_GAIN:
            raise ValueError(f"chroma_gain must be within [0, {MAX_CHROMA_GAIN:g}], got {self.chroma_gain}")
        if self.neutral is not None and not 0.0 <= self.neutral <= MAX_NEUTRAL:
            raise ValueError(f"neutral must be within [0, {MAX_NEUTRAL:g}], got {self.neutral}")
        if not (self.device in {"auto", "cpu", "cuda"} or self.device.startswith("cuda:")):
            raise ValueError(f"device must be auto|cpu|cuda|cuda:N, got {self.device!r}")
