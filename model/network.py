"""The global + local fusion colorization network (Iizuka, Simo-Serra & Ishikawa, SIGGRAPH 2016).

One module per sub-network, each built from a :class:`FusionConfig`. The top-level :class:`FusionNetwork`
exposes its stages (``local_features``, ``global_features``, ``fuse_and_decode``) so the predictor can swap
the global vector for style transfer and shot-level video colorization.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.chroma_level import ChromaLevel, level_features
from model.color import normalize_ab
from model.config import FusionConfig
from model.quantize import ABQuantizer


def conv_bn_relu(cin: int, cout: int, stride: int = 1, kernel: int = 3) -> nn.Sequential:
    """3x3 convolution + batch norm + ReLU; the bias is folded into batch norm."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def fc_bn_relu(fin: int, fout: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(fin, fout, bias=False), nn.BatchNorm1d(fout), nn.ReLU(inplace=True))


class LowLevelFeatures(nn.Module):
    """Six convolutions (64/s2, 128, 128/s2, 256, 256/s2, 512), shared by the local and global paths."""

    def __init__(self, cfg: FusionConfig) -> None:
        super().__init__()
        c = cfg.ch
        self.layers = nn.Sequential(
            conv_bn_relu(1, c(64), stride=2),
            conv_bn_relu(c(64), c(128)),
            conv_bn_relu(c(128), c(128), stride=2),
            conv_bn_relu(c(128), c(256)),
            conv_bn_relu(c(256), c(256), stride=2),
            conv_bn_relu(c(256), c(512)),
        )

    def forward(self, lightness: Tensor) -> Tensor:
        return self.layers(lightness)  # (B, 1, H, W) -> (B, 512w, H/8, W/8)


class MidLevelFeatures(nn.Module):
    """Two convolutions (512, 256) on the full-resolution path."""

    def __init__(self, cfg: FusionConfig) -> None:
        super().__init__()
        c = cfg.ch
        self.layers = nn.Sequential(conv_bn_relu(c(512), c(512)), conv_bn_relu(c(512), c(256)))

    def forward(self, low: Tensor) -> Tensor:
        return self.layers(low)  # (B, 512w, H/8, W/8) -> (B, 256w, H/8, W/8)


class GlobalFeatures(nn.Module):
    """Four convolutions (512/s2, 512, 512/s2, 512) and FC 1024 -> 512 -> 256 on the fixed-size copy.

    Returns the 256-d global vector used by the fusion layer and the 512-d layer the classifier reads.
    """

    def __init__(self, cfg: FusionConfig) -> None:
        super().__init__()
        c = cfg.ch
        self.convs = nn.Sequential(
            conv_bn_relu(c(512), c(512), stride=2),
            conv_bn_relu(c(512), c(512)),
            conv_bn_relu(c(512), c(512), stride=2),
            conv_bn_relu(c(512), c(512)),
        )
        self.fc1 = fc_bn_relu(c(512) * cfg.global_grid**2, c(1024))
        self.fc2 = fc_bn_relu(c(1024), c(512))
        self.fc3 = fc_bn_relu(c(512), c(256))

    def forward(self, low: Tensor) -> tuple[Tensor, Tensor]:
        x = self.convs(low).flatten(1)  # (B, 512w * g * g)
        hidden = self.fc2(self.fc1(x))  # (B, 512w)
        return self.fc3(hidden), hidden  # (B, 256w), (B, 512w)


class Fusion(nn.Module):
    """Tile the global vector over the mid-level map, concatenate, and mix with a 1x1 convolution."""

    def __init__(self, cfg: FusionConfig) -> None:
        super().__init__()
        c = cfg.ch
        self.mix = conv_bn_relu(c(256) * 2, c(256), kernel=1)

    def forward(self, mid: Tensor, global_vector: Tensor) -> Tensor:
        b, _, h, w = mid.shape
        tiled = global_vector[:, :, None, None].expand(b, global_vector.shape[1], h, w)
        return self.mix(torch.cat((mid, tiled), dim=1))


class ColorizationNetwork(nn.Module):
    """128, up x2, 64, 64, up x2, 32, 2 + sigmoid: normalised a*b* at half the input resolution.

    Two optional heads read the colour path without training it (their inputs are detached); while they
    train, the raw a*b* come out (what the losses need), and in eval mode they adjust it:

    * ``cfg.confidence > 0``: a small head on the last hidden features predicts each pixel's expected squared
      a*b* error (Gaussian likelihood); the a*b* are pulled towards neutral where that error is large against
      their own chroma (a Wiener-style factor ``|v|^2 / (|v|^2 + confidence * variance)``, v the centred a*b*).
    * ``cfg.distribution > 0``: a :class:`DistributionHead` on the fused features predicts a distribution over
      quantised a*b*; each pixel moves towards its annealed mean by ``distribution`` x the head's certainty.
      With ``cfg.chroma_level`` each photo's result is then scaled by one fitted factor (:mod:`model.chroma_level`).
    """

    def __init__(self, cfg: FusionConfig) -> None:
        super().__init__()
        c = cfg.ch
        self.layers = nn.Sequential(
            conv_bn_relu(c(256), c(128)),
            nn.Upsample(scale_factor=2, mode="nearest"),
            conv_bn_relu(c(128), c(64)),
            conv_bn_relu(c(64), c(64)),
            nn.Upsample(scale_factor=2, mode="nearest"),
            conv_bn_relu(c(64), c(32)),
            nn.Conv2d(c(32), 2, 3, padding=1),
            nn.Sigmoid(),
        )
        self.strength = cfg.confidence
        self.confidence = ConfidenceHead(c(32)) if cfg.confidence > 0 else None
        self.blend = cfg.distribution
        self.distribution = DistributionHead(c(256)) if cfg.distribution > 0 else None
        self.level = ChromaLevel() if cfg.chroma_level else None

    def level_inputs(self, fused: Tensor) -> Tensor:
        """The statistics ``(B, 4)`` :class:`ChromaLevel` reads, before it scales anything (what it is fitted on)."""
        if self.distribution is None or self.level is None:
            raise ValueError("this network has no chroma level (its config needs chroma_level=True)")
        ab = self.layers(fused)
        head = self.distribution.decode(self.distribution(fused))
        return self._level_features(self.distribution.mix(ab, head, self.blend), ab, head)

    def _level_features(self, mixed: Tensor, ab: Tensor, head: HeadOutput) -> Tensor:
        assert self.distribution is not None and self.level is not None
        centres = self.distribution.quantizer.centres
        return level_features(mixed, ab, head.probs, head.certainty, centres, self.level.share)

    def forward(self, fused: Tensor) -> Tensor:
        if self.confidence is None and self.distribution is None:
            return self.layers(fused)  # (B, 256w, H/8, W/8) -> (B, 2, H/2, W/2)
        hidden = self.layers[:-2](fused)
        ab = self.layers[-1](self.layers[-2](hidden))
        # the heads read the colour path, never train it
        variance = self.confidence(hidden.detach()) if self.confidence is not None else None
        logits = self.distribution(fused.detach()) if self.distribution is not None else None
        heads = (self.confidence, self.distribution)
        if any(head is not None and head.training for head in heads):
            return ab
        if logits is not None:
            assert self.distribution is not None
            head = self.distribution.decode(logits)
            mixed = self.distribution.mix(ab, head, self.blend)
            if self.level is not None:
                mixed = self.level(mixed, self._level_features(mixed, ab, head))
            ab = mixed
        if variance is not None:
            centred = ab - 0.5
            power = centred.pow(2).sum(dim=1, keepdim=True)
            ab = 0.5 + centred * (power / (power + self.strength * variance + 1e-12))
        return ab


class HeadOutput(NamedTuple):
    """:meth:`DistributionHead.decode`'s reading of its logits, per pixel at the head's resolution."""

    annealed: Tensor  # (B, 2, h, w) annealed-mean a*b* (a*b* units)
    certainty: Tensor  # (B, 1, h, w) 1 - entropy / log Q, in [0, 1]
    probs: Tensor  # (B, Q, h, w) the bins' probabilities


class DistributionHead(nn.Module):
    """Fused features ``(B, C, H/8, W/8)`` -> logits over Zhang et al.'s a*b* bins ``(B, Q, H/4, W/4)``.

    Regression alone predicts the mean of the plausible colours, greyish wherever several are plausible; the
    distribution's annealed mean (temperature 0.38) is vivid where the head is sure. :meth:`mix` moves the
    regression towards it by ``blend`` x the head's certainty (1 - normalised entropy), so unsure pixels keep
    the regression's colour."""

    TEMPERATURE = 0.38  # Zhang et al.'s annealed mean
    WIDTH = 64

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.quantizer = ABQuantizer(10.0)
        self.layers = nn.Sequential(
            conv_bn_relu(channels, self.WIDTH),
            nn.Upsample(scale_factor=2, mode="nearest"),
            conv_bn_relu(self.WIDTH, self.WIDTH),
            nn.Conv2d(self.WIDTH, self.quantizer.num_bins, 1),
        )

    def forward(self, fused: Tensor) -> Tensor:
        return self.layers(fused)

    def decode(self, logits: Tensor) -> HeadOutput:
        """What the logits say, each pixel: the annealed mean, the certainty and the bins' probabilities."""
        logits = logits.float()
        probs = torch.softmax(logits, dim=1)
        entropy = -(probs * torch.log_softmax(logits, dim=1)).sum(dim=1, keepdim=True)
        certainty = (1.0 - entropy / math.log(self.quantizer.num_bins)).clamp(0.0, 1.0)
        return HeadOutput(self.quantizer.annealed_mean(logits, self.TEMPERATURE), certainty, probs)

    def mix(self, ab: Tensor, head: HeadOutput, blend: float) -> Tensor:
        """Normalised a*b* ``(B, 2, H/2, W/2)`` moved towards the annealed mean where the head is sure."""
        target = normalize_ab(F.interpolate(head.annealed, size=ab.shape[-2:], mode="bilinear", align_corners=False))
        weight = blend * F.interpolate(head.certainty, size=ab.shape[-2:], mode="bilinear", align_corners=False)
        return (ab.float() + weight * (target - ab.float())).clamp(0.0, 1.0).to(ab.dtype)


class ConfidenceHead(nn.Module):
    """Hidden features -> expected squared error of the normalised a*b* ``(B, 1, h, w)``, positive."""

    PRIOR_VARIANCE = 0.003  # about the mean squared error of a trained network: where training starts

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(16, 1, 1))

    def reset(self) -> None:
        last = self.layers[-1]
        assert isinstance(last, nn.Conv2d) and last.bias is not None
        nn.init.zeros_(last.weight)
        nn.init.constant_(last.bias, math.log(math.expm1(self.PRIOR_VARIANCE)))

    def forward(self, hidden: Tensor) -> Tensor:
        return F.softplus(self.layers(hidden).float()) + 1e-5


class ClassificationHead(nn.Module):
    """Scene classes from the 512-d global layer, trained jointly with colour."""

    def __init__(self, cfg: FusionConfig) -> None:
        super().__init__()
        c = cfg.ch
        self.layers = nn.Sequential(fc_bn_relu(c(512), c(256)), nn.Linear(c(256), cfg.num_classes))

    def forward(self, hidden: Tensor) -> Tensor:
        return self.layers(hidden)  # (B, num_classes) logits


class FusionNetwork(nn.Module):
    """The whole network. Input: L*/100 in ``(B, 1, H, W)`` with H, W multiples of 8."""

    def __init__(self, cfg: FusionConfig) -> None:
        super().__init__()
        self.config = cfg
        self.low = LowLevelFeatures(cfg)
        self.mid = MidLevelFeatures(cfg)
        self.glob = GlobalFeatures(cfg)
        self.fusion: nn.Module = Fusion(cfg)  # a subclass may fuse a longer global vector (model/prior.py)
        self.colorization = ColorizationNetwork(cfg)
        self.classifier = ClassificationHead(cfg)
        self.apply(_init_weights)
        if self.colorization.confidence is not None:
            self.colorization.confidence.reset()

    @property
    def global_dim(self) -> int:
        return self.config.ch(256)

    def global_input(self, lightness: Tensor) -> Tensor:
        """The fixed-size copy the global path sees (aspect ratio is not kept, as in the paper)."""
        size = self.config.global_size
        if lightness.shape[-2:] == (size, size):
            return lightness
        return F.interpolate(
            lightness, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )

    def global_features(self, lightness: Tensor) -> tuple[Tensor, Tensor]:
        """Global vector ``(B, 256w)`` and class logits ``(B, num_classes)`` of an image of any size."""
        vector, hidden = self.glob(self.low(self.global_input(lightness)))
        return vector, self.classifier(hidden)

    def local_features(self, lightness: Tensor) -> Tensor:
        h, w = lightness.shape[-2:]
        assert h % 8 == 0 and w % 8 == 0, f"input must be padded to a multiple of 8, got {h}x{w}"
        return self.mid(self.low(lightness))

    def fuse_and_decode(self, local: Tensor, global_vector: Tensor) -> Tensor:
        return self.colorization(self.fusion(local, global_vector))

    def level_features(self, lightness: Tensor) -> Tensor:
        """The per-photo statistics ``(B, 4)`` the chroma level is fitted on (model/chroma_level.py)."""
        global_vector, _ = self.global_features(lightness)
        return self.colorization.level_inputs(self.fusion(self.local_features(lightness), global_vector))

    def forward(self, lightness: Tensor, global_vector: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Normalised a*b* ``(B, 2, H/2, W/2)`` and class logits (None when ``global_vector`` is given)."""
        logits: Tensor | None = None
        if global_vector is None:
            global_vector, logits = self.global_features(lightness)
        return self.fuse_and_decode(self.local_features(lightness), global_vector), logits


def _init_weights(module: nn.Module) -> None:
    # He initialisation keeps activation variance through the ReLU stack, so even an untrained network
    # responds to its input (and to a swapped global vector) instead of collapsing to a constant.
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
