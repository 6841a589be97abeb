"""One loss per model family, looked up by the family's registry name (as models are in :mod:`model.registry`).

* ``fusion`` (Iizuka et al.): MSE on normalised a*b* + ``alpha`` x cross-entropy of the scene classifier on
  labelled rows only (alpha = 1/300, the paper's value); optionally + ``alpha`` x KL divergence to a teacher's
  soft ImageNet labels through a training-only head, so unlabelled photos carry a global signal too.
* ``prior`` (fusion + a pretrained global prior): the same loss as ``fusion``.
* ``regression``: Huber loss on normalised a*b*.
* ``classification`` (Zhang et al.): cross-entropy against soft-encoded a*b* bins, each pixel weighted by the
  rarity of its colour (class rebalancing, lambda = 1/2, prior smoothed with sigma = 5).

A loss is built once per run from the network, the data statistics and the loss options; calling it on a
batch returns the total and its named parts for the progress bar and logs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.color import denormalize_ab
from model.quantize import ABQuantizer
from model.training.data import UNLABELLED
from model.training.stats import DataStats

CONFIDENCE_WEIGHT = 1e-3  # the likelihood's scale (about -3 per pixel) against the MSE's (about 1e-3)
DISTRIBUTION_WEIGHT = 1e-2  # the distribution head's cross-entropy (about 3-5 per pixel; its input is detached)


@dataclass(frozen=True)
class LossOptions:
    """Loss settings shared by every family (each family reads the ones it uses)."""

    alpha: float = 1.0 / 300.0  # weight of the classification (and teacher) term
    huber_delta: float = 0.05  # Huber transition in normalised a*b* units (0.05 = 12.8 a*b* units)
    rebalance_lambda: float = 0.5  # mix of the empirical colour prior with a uniform one
    chroma_weight: float = 0.0  # fusion, prior: extra penalty for predicting less chroma than the target (0 = off)
    teacher_temperature: float = 1.0


@dataclass
class Batch:
    lightness: Tensor  # (B, 1, S, S) L*/100
    ab: Tensor  # (B, 2, S/2, S/2) normalised a*b* target
    labels: Tensor  # (B,) class index or -1
    teacher: Tensor | None = None  # (B, K) teacher probabilities


@dataclass
class LossOutput:
    total: Tensor
    parts: dict[str, float] = field(default_factory=dict)


class FamilyLoss(nn.Module):
    """Base class: a loss may hold trainable parts (e.g. a training-only head) and buffers."""

    def forward(self, model: nn.Module, batch: Batch) -> LossOutput:
        raise NotImplementedError

    def describe(self) -> str:
        """One line for the model card."""
        raise NotImplementedError


LossBuilder = Callable[[nn.Module, DataStats, LossOptions, int], FamilyLoss]
_LOSSES: dict[str, LossBuilder] = {}


def register_loss(family: str) -> Callable[[LossBuilder], LossBuilder]:
    def decorator(builder: LossBuilder) -> LossBuilder:
        if family in _LOSSES:
            raise ValueError(f"a loss for family {family!r} is already registered")
        _LOSSES[family] = builder
        return builder

    return decorator


def build_loss(
    family: str, model: nn.Module, stats: DataStats, options: LossOptions, teacher_classes: int = 0
) -> FamilyLoss:
    """The loss of ``family`` (fails loudly when a family has none)."""
    try:
        builder = _LOSSES[family]
    except KeyError:
        raise ValueError(f"no loss registered for model family {family!r}; have {sorted(_LOSSES)}") from None
    return builder(model, stats, options, teacher_classes)


def rebalance_weights(histogram: Tensor, quantizer: ABQuantizer, lam: float, sigma: float = 5.0) -> Tensor:
    """Zhang et al.'s per-bin weights: ``w ∝ ((1 - lam) p~ + lam / Q)^-1`` with ``E_p~[w] = 1``, where p~ is
    the empirical bin distribution smoothed by a Gaussian of ``sigma`` a*b* units."""
    p = histogram.double() / histogram.sum().clamp(min=1)
    c = quantizer.centres.double()
    kernel = torch.exp(-torch.cdist(c, c).pow(2) / (2 * sigma**2))
    smooth = kernel @ p
    smooth = smooth / smooth.sum()
    w = 1.0 / ((1.0 - lam) * smooth + lam / p.numel())
    return (w / (smooth * w).sum()).float()


def soft_cross_entropy(
    logits: Tensor, ab_norm: Tensor, quantizer: ABQuantizer, weights: Tensor
) -> tuple[Tensor, Tensor]:
    """Class-rebalanced cross-entropy of bin logits ``(B, Q, h, w)`` against the normalised a*b* target
    (average-pooled to the logits' size, soft-encoded over the 3x3 lattice neighbourhood): the weighted loss
    and the plain per-pixel cross-entropy's mean (for logs)."""
    logits = logits.float()
    ab = denormalize_ab(F.adaptive_avg_pool2d(ab_norm, (logits.shape[-2], logits.shape[-1])))
    idx, weight = quantizer.soft_encode(ab)  # (B, 9, h, w)
    log_p = F.log_softmax(logits, dim=1).gather(1, idx)
    ce = -(weight * log_p).sum(dim=1)  # (B, h, w)
    nearest = idx.gather(1, weight.argmax(dim=1, keepdim=True))[:, 0]
    return (weights[nearest] * ce).mean(), ce.mean()


def _checked_weights(stats: DataStats, quantizer: ABQuantizer, lam: float) -> Tensor:
    if stats.ab_histogram.numel() != quantizer.num_bins:
        raise ValueError(
            f"the data statistics count {stats.ab_histogram.numel()} a*b* bins but the model has "
            f"{quantizer.num_bins} (statistics use the 10-unit grid)"
        )
    return rebalance_weights(stats.ab_histogram, quantizer, lam)


def _teacher_term(logits: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    log_q = F.log_softmax(logits.float() / temperature, dim=1)
    return F.kl_div(log_q, teacher.float(), reduction="batchmean") * temperature**2


class FusionLoss(FamilyLoss):
    def __init__(self, model: Any, stats: DataStats, options: LossOptions, teacher_classes: int) -> None:
        super().__init__()
        self.options = options
        self.hidden: Tensor | None = None
        self.variance: Tensor | None = None
        self.bin_logits: Tensor | None = None
        self.teacher_head: nn.Module | None = None
        head = getattr(getattr(model, "colorization", None), "confidence", None)
        self.has_confidence = head is not None
        if head is not None:
            head.register_forward_hook(self._keep_variance)
        dist = getattr(getattr(model, "colorization", None), "distribution", None)
        self.quantizer: ABQuantizer | None = None
        if dist is not None:
            self.quantizer = dist.quantizer
            self.register_buffer("bin_weights", _checked_weights(stats, dist.quantizer, options.rebalance_lambda))
            dist.register_forward_hook(self._keep_bin_logits)
        if teacher_classes:
            # A training-only head on the classifier's input (the 512w global layer), dropped at export.
            width = model.classifier.layers[0][0].in_features
            self.teacher_head = nn.Linear(width, teacher_classes)
            model.classifier.register_forward_pre_hook(self._keep_hidden)

    def _keep_hidden(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        self.hidden = args[0]

    def _keep_variance(self, module: nn.Module, args: tuple[Any, ...], output: Tensor) -> None:
        self.variance = output

    def _keep_bin_logits(self, module: nn.Module, args: tuple[Any, ...], output: Tensor) -> None:
        self.bin_logits = output

    def forward(self, model: nn.Module, batch: Batch) -> LossOutput:
        self.variance = self.bin_logits = None
        pred, logits = model(batch.lightness)
        mse = F.mse_loss(pred.float(), batch.ab)
        total = mse
        parts = {"mse": mse.item()}
        if self.variance is not None:
            # Gaussian likelihood of the colour's actual squared error; the colour itself is not pushed by it.
            error = (pred.detach().float() - batch.ab).pow(2).sum(dim=1, keepdim=True)
            nll = 0.5 * (error / self.variance + self.variance.log()).mean()
            total = total + CONFIDENCE_WEIGHT * nll
            parts["confidence"] = nll.item()
        if self.bin_logits is not None and self.quantizer is not None:
            weighted, ce = soft_cross_entropy(self.bin_logits, batch.ab, self.quantizer, self.bin_weights)
            total = total + DISTRIBUTION_WEIGHT * weighted
            parts["bins"] = ce.item()
        if self.options.chroma_weight > 0:
            # One-sided: only too little chroma is penalised, countering the greyish mean regression tends to.
            deficit = (batch.ab - 0.5).norm(dim=1) - (pred.float() - 0.5).norm(dim=1)
            chroma = F.relu(deficit).pow(2).mean()
            total = total + self.options.chroma_weight * chroma
            parts["chroma"] = chroma.item()
        labelled = batch.labels != UNLABELLED
        if logits is not None and labelled.any():
            ce = F.cross_entropy(logits[labelled].float(), batch.labels[labelled])
            total = total + self.options.alpha * ce
            parts["ce"] = ce.item()
        if self.teacher_head is not None and batch.teacher is not None and self.hidden is not None:
            kl = _teacher_term(self.teacher_head(self.hidden), batch.teacher, self.options.teacher_temperature)
            total = total + self.options.alpha * kl
            parts["teacher"] = kl.item()
        return LossOutput(total, parts)

    def describe(self) -> str:
        o = self.options
        text = f"MSE on normalised a*b* + {o.alpha:.5g} x cross-entropy on labelled images"
        if o.chroma_weight:
            text += f" + {o.chroma_weight:g} x one-sided chroma-deficit penalty"
        if self.has_confidence:
            text += f" + {CONFIDENCE_WEIGHT:g} x Gaussian NLL of the confidence head (colour detached)"
        if self.quantizer is not None:
            balance = "none" if o.rebalance_lambda >= 1.0 else f"lambda {o.rebalance_lambda:g}"
            text += (
                f" + {DISTRIBUTION_WEIGHT:g} x cross-entropy of the distribution head ({self.quantizer.num_bins} "
                f"a*b* bins, class rebalancing {balance}; colour path detached)"
            )
        if self.teacher_head is not None:
            text += f" + {o.alpha:.5g} x KL to the teacher's soft labels (training-only head)"
        return text


class RegressionLoss(FamilyLoss):
    def __init__(self, model: nn.Module, stats: DataStats, options: LossOptions, teacher_classes: int) -> None:
        super().__init__()
        self.delta = options.huber_delta

    def forward(self, model: nn.Module, batch: Batch) -> LossOutput:
        pred, _ = model(batch.lightness)
        loss = F.huber_loss(pred.float(), batch.ab, delta=self.delta)
        return LossOutput(loss, {"huber": loss.item()})

    def describe(self) -> str:
        return f"Huber loss on normalised a*b* (delta {self.delta:g})"


class ClassificationLoss(FamilyLoss):
    weights: Tensor

    def __init__(self, model: Any, stats: DataStats, options: LossOptions, teacher_classes: int) -> None:
        super().__init__()
        self.quantizer: ABQuantizer = model.quantizer
        self.register_buffer("weights", _checked_weights(stats, self.quantizer, options.rebalance_lambda))
        self.rebalance_lambda = options.rebalance_lambda

    def forward(self, model: Any, batch: Batch) -> LossOutput:
        loss, ce = soft_cross_entropy(model.bin_logits(batch.lightness), batch.ab, self.quantizer, self.weights)
        return LossOutput(loss, {"ce": ce.item()})

    def describe(self) -> str:
        return (
            f"cross-entropy against soft-encoded a*b* bins ({self.quantizer.num_bins} bins), class rebalancing "
            f"lambda {self.rebalance_lambda:g}"
        )


register_loss("fusion")(FusionLoss)
register_loss("prior")(FusionLoss)  # the fusion network with a pretrained global prior: the same objective
register_loss("regression")(RegressionLoss)
register_loss("classification")(ClassificationLoss)
