"""The typed configuration of one training run. Saved whole in every checkpoint it produces."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from model.training.losses import LossOptions

MAX_CHROMA_EXPONENT = 4.0  # TrainConfig.chroma_exponent: at 4 a photo twice as colourful is drawn 16x as often


@dataclass(frozen=True)
class TrainConfig:
    data: str  # CSV manifest, or folder (with manifest.csv, or a tree of images)
    out: str  # output folder: state.safetensors (resumable), model.safetensors (fp16, with card), logs
    family: str = "fusion"  # fusion | prior | regression | classification (any registered family with a loss)
    preset: str = "tiny"  # the family's preset
    size: int = 128  # side of the square training crops (multiple of 8)
    batch_size: int = 32
    minutes: float = 15.0  # training-time budget of the whole run, resumes included
    max_steps: int | None = None  # stop earlier after this many optimiser steps (tests, exact comparisons)
    lr: float = 1e-3  # AdamW peak learning rate; linear warm-up, then cosine decay over the budget
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    grad_clip: float = 1.0
    init_from: str | None = None  # warm start: a checkpoint whose matching weights start the run
    tone_jitter: float = 0.0  # share of training inputs given a random tone curve (0: off)
    # How photos are drawn: each with probability proportional to (photos of its source) ** (exponent - 1).
    # 1: every photo equally often (a large source dominates); 0: every source equally often; 0.5 between.
    source_exponent: float = 1.0
    # > 0: each photo is also drawn in proportion to (its mean chroma + 1) ** exponent, so vivid photos come up
    # more often (the loop measures every photo's chroma once, at the start); 0: chroma plays no part.
    chroma_exponent: float = 0.0
    confidence: float = 0.0  # > 0: the network gets a confidence head of this strength (FusionConfig.confidence)
    distribution: float = 0.0  # > 0: an a*b* distribution head blended this strongly (FusionConfig.distribution)
    train_only: str | None = None  # train only parameters under this prefix (e.g. colorization.confidence)
    # prior family: > 0 fine-tunes the backbone's last N blocks and head convolution (PriorConfig), at
    # prior_lr_scale x the learning rate; 0 keeps the backbone frozen.
    prior_train_blocks: int = 0
    prior_lr_scale: float = 0.1
    # A checkpoint whose pretrained part (the prior's ImageNet backbone) starts the run instead of its pip
    # package: for hosts without the package. None: the package.
    pretrained_from: str | None = None
    teacher: bool = False  # soft ImageNet labels from EfficientNet-Lite0 as an extra global signal (fusion)
    teacher_size: int = 224  # side of the photos the teacher sees (its own resolution; less is faster)
    loss: LossOptions = field(default_factory=LossOptions)
    split: str = "train"  # which split trains
    max_train_images: int | None = None  # train on a random subset of this many photos (quick experiments)
    calibrate_images: int = 500  # training photos choosing the chroma gain after training (0: gain 1.0)
    max_psnr_drop: float = 0.5  # PSNR (dB) the chroma gain may cost on those photos
    eval_split: str | None = "val"  # evaluated at the end (when the data has this split); None = skip
    eval_max_side: int | None = 256
    device: str = "auto"  # auto | cpu | cuda | cuda:N; bf16 autocast on CUDA
    threads: int | None = None  # torch CPU threads (None: torch's default)
    workers: int = 2  # DataLoader worker processes (decoding, crops, flips)
    cache_dir: str | None = None  # data statistics and teacher labels are cached here (default: out)
    checkpoint_minutes: float = 2.0  # how often the resumable state is written
    log_every: int = 20  # steps between log lines (train_log.jsonl)
    seed: int = 0
    name: str | None = None  # model card name (default: "<family>-<preset>-<data folder>")
    data_name: str | None = None  # how the card names the data (default: the folder name and photo count)
    resume: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.size < 16 or self.size % 8:
            raise ValueError(f"size must be a multiple of 8 and at least 16, got {self.size}")
        if self.batch_size < 2:
            raise ValueError("batch_size must be >= 2 (batch norm needs more than one image)")
        if self.minutes <= 0:
            raise ValueError("minutes must be positive")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError("max_steps must be >= 1")
        if self.lr <= 0:
            raise ValueError("lr must be positive")
        if not 0.0 <= self.tone_jitter <= 1.0:
            raise ValueError(f"tone_jitter is a share of the inputs, in [0, 1], got {self.tone_jitter}")
        if self.prior_train_blocks and self.family != "prior":
            raise ValueError(f"prior_train_blocks needs the prior family, not {self.family}")
        if self.pretrained_from and self.family != "prior":
            raise ValueError(f"pretrained_from needs a family with a pretrained part (prior), not {self.family}")
        if self.prior_lr_scale <= 0:
            raise ValueError(f"prior_lr_scale must be positive, got {self.prior_lr_scale}")
        if not 0.0 <= self.source_exponent <= 1.0:
            raise ValueError(f"source_exponent must be in [0, 1] (1: every photo alike), got {self.source_exponent}")
        if not 0.0 <= self.chroma_exponent <= MAX_CHROMA_EXPONENT:
            raise ValueError(
                f"chroma_exponent must be in [0, {MAX_CHROMA_EXPONENT:g}] (0: chroma plays no part), "
                f"got {self.chroma_exponent}"
            )

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        values = dict(data)
        values["loss"] = LossOptions(**values.get("loss", {}))
        return cls(**values)
