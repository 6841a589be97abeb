"""The two comparison models of the fusion network, registered as model families.

* ``regression``: a VGG-16-style encoder-decoder that regresses normalised a*b* (trained with a Huber loss).
* ``classification``: the same encoder with Zhang, Isola & Efros (ECCV 2016)'s head: a distribution over
  quantised a*b* bins (trained with class-rebalanced cross-entropy), decoded by the annealed mean.

Both share the fusion network's interface, ``forward(L*/100 (B, 1, H, W), global_vector=None) ->
(normalised a*b* (B, 2, H/2, W/2), None)``, so the shared predictor runs any family. Their losses live in
:mod:`model.training.losses`, looked up by family name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from model.color import normalize_ab
from model.network import _init_weights, conv_bn_relu
from model.quantize import ABQuantizer
from model.registry import Family, register_family


@dataclass(frozen=True)
class BaselineConfig:
    """Width of the VGG-16-style encoder-decoder (channels are VGG-16's times ``width``)."""

    width: float = 1.0
    grid: float = 10.0  # a*b* bin spacing (classification only)
    temperature: float = 0.38  # annealed-mean temperature (classification only; Zhang et al.'s value)
    name: str = "custom"

    def __post_init__(self) -> None:
        if not 0.0 < self.width <= 4.0:
            raise ValueError(f"width must be in (0, 4], got {self.width}")
        if not 2.0 <= self.grid <= 50.0:
            raise ValueError(f"grid must be in [2, 50] a*b* units, got {self.grid}")
        if self.temperature <= 0.0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")

    def ch(self, channels: int) -> int:
        return max(8, int(round(channels * self.width)))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BaselineConfig:
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown BaselineConfig fields: {sorted(unknown)}")
        return cls(**data)


BASELINE_PRESETS: dict[str, BaselineConfig] = {
    "paper": BaselineConfig(width=1.0, name="paper"),
    "small": BaselineConfig(width=0.5, name="small"),
    "tiny": BaselineConfig(width=0.25, name="tiny"),
    "test": BaselineConfig(width=0.0625, name="test"),
}


class VGGEncoder(nn.Module):
    """VGG-16's 13 convolutions (64x2, 128x2, 256x3, 512x3, 512x3); strided convolutions replace pooling and
    stop at H/8, and the last block is dilated (x2) to widen the receptive field, as in Zhang et al."""

    def __init__(self, cfg: BaselineConfig) -> None:
        super().__init__()
        c = cfg.ch

        def block(cin: int, cout: int, n: int, stride: int = 1, dilation: int = 1) -> list[nn.Module]:
            return [
                _conv(cin if i == 0 else cout, cout, stride=stride if i == n - 1 else 1, dilation=dilation)
                for i in range(n)
            ]

        self.layers = nn.Sequential(
            *block(1, c(64), 2, stride=2),  # H/2
            *block(c(64), c(128), 2, stride=2),  # H/4
            *block(c(128), c(256), 3, stride=2),  # H/8
            *block(c(256), c(512), 3),
            *block(c(512), c(512), 3, dilation=2),
        )

    def forward(self, lightness: Tensor) -> Tensor:
        return self.layers(lightness)  # (B, 1, H, W) -> (B, 512w, H/8, W/8)


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """3x3 convolution (optionally dilated) + batch norm + ReLU, laid out like :func:`conv_bn_relu`."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), conv_bn_relu(cin, cout))


class RegressionBaseline(nn.Module):
    """VGG-16-style encoder-decoder that regresses normalised a*b* at half resolution."""

    def __init__(self, cfg: BaselineConfig) -> None:
        super().__init__()
        self.config = cfg
        c = cfg.ch
        self.encoder = VGGEncoder(cfg)
        self.decoder = nn.Sequential(
            _up(c(512), c(256)),  # H/4
            _up(c(256), c(128)),  # H/2
            conv_bn_relu(c(128), c(64)),
            nn.Conv2d(c(64), 2, 3, padding=1),
            nn.Sigmoid(),
        )
        self.apply(_init_weights)

    def forward(self, lightness: Tensor, global_vector: Tensor | None = None) -> tuple[Tensor, None]:
        return self.decoder(self.encoder(lightness)), None


class ClassificationBaseline(nn.Module):
    """The VGG-16-style encoder with a distribution over a*b* bins at H/4, decoded by the annealed mean."""

    def __init__(self, cfg: BaselineConfig) -> None:
        super().__init__()
        self.config = cfg
        c = cfg.ch
        self.quantizer = ABQuantizer(cfg.grid)
        self.encoder = VGGEncoder(cfg)
        self.decoder = nn.Sequential(
            _up(c(512), c(256)),  # H/4
            conv_bn_relu(c(256), c(256)),
            nn.Conv2d(c(256), self.quantizer.num_bins, 1),
        )
        self.apply(_init_weights)

    def bin_logits(self, lightness: Tensor) -> Tensor:
        """Unnormalised log-probabilities of each a*b* bin ``(B, Q, H/4, W/4)`` (what the loss trains)."""
        return self.decoder(self.encoder(lightness))

    def forward(self, lightness: Tensor, global_vector: Tensor | None = None) -> tuple[Tensor, None]:
        ab = self.quantizer.annealed_mean(self.bin_logits(lightness), self.config.temperature)
        ab = F.interpolate(ab, scale_factor=2, mode="bilinear", align_corners=False)  # (B, 2, H/2, W/2)
        return normalize_ab(ab).clamp(0.0, 1.0), None


register_family(Family("regression", BaselineConfig.from_dict, RegressionBaseline, dict(BASELINE_PRESETS)))
register_family(Family("classification", BaselineConfig.from_dict, ClassificationBaseline, dict(BASELINE_PRESETS)))
