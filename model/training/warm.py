"""Warm starts: begin a run from another checkpoint's weights instead of from scratch.

The typical use is growing a trained ``fusion`` network into a ``prior`` one: every tensor whose name and
shape match is copied; a tensor that only grew along its input dimension (the fusion layer's 1x1 mix, which
takes the longer global vector) gets the old weights in its first input channels and zeros in the new ones,
so the warm-started network computes exactly what the checkpoint did until training moves the new weights.
Anything else (a new projection, a resized classifier) keeps its fresh initialisation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from model.checkpoint import load_checkpoint

log = logging.getLogger(__name__)


@dataclass
class WarmStart:
    source: str
    copied: list[str] = field(default_factory=list)
    widened: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return (
            f"warm start from {Path(self.source).name}: {len(self.copied)} tensors copied, "
            f"{len(self.widened)} widened (new inputs zeroed), {len(self.fresh)} fresh"
        )


def widen(old: torch.Tensor, new: torch.Tensor) -> torch.Tensor | None:
    """``old`` placed in the first input channels of a zero tensor shaped like ``new``, when only dim 1 grew."""
    if old.dim() != new.dim() or old.dim() < 2 or old.shape[0] != new.shape[0] or old.shape[2:] != new.shape[2:]:
        return None
    if old.shape[1] >= new.shape[1]:
        return None
    out = torch.zeros_like(new)
    out[:, : old.shape[1]] = old.to(new.dtype)
    return out


def _same_stored(mine: torch.Tensor, stored: torch.Tensor) -> bool:
    """Whether a checkpoint's tensor is ``mine`` as that checkpoint stores it (e.g. rounded to fp16)."""
    return mine.shape == stored.shape and torch.equal(mine.to(stored.dtype), stored)


def warm_start(model: nn.Module, source: str | Path, *, skip_prefixes: tuple[str, ...] = ("prior.",)) -> WarmStart:
    """Copy ``source``'s weights into ``model`` (in place) where they fit; see the module docstring.

    ``skip_prefixes``: tensors the model brings itself (the prior family's pretrained backbone, exact in fp32,
    where a shipped checkpoint holds an fp16 copy). They are kept where the source holds the same values up to
    its storage precision, and copied where the source's differ (a fine-tuned backbone: what the source learnt)."""
    raw = load_checkpoint(source).state_dict
    old = {k: v.float() if v.is_floating_point() else v for k, v in raw.items()}
    target = model.state_dict()
    report = WarmStart(str(source))
    update: dict[str, torch.Tensor] = {}
    for name, tensor in target.items():
        prev = old.get(name)
        if name.startswith(skip_prefixes) and (prev is None or _same_stored(tensor, raw[name])):
            continue
        if prev is not None and prev.shape == tensor.shape:
            update[name] = prev.to(tensor.dtype)
            report.copied.append(name)
        elif prev is not None and (grown := widen(prev, tensor)) is not None:
            update[name] = grown
            report.widened.append(name)
        else:
            report.fresh.append(name)
    if not report.copied:
        raise ValueError(f"{source}: no tensor matches the network being trained; not a related checkpoint")
    model.load_state_dict(update, strict=False)
    log.info("%s", report.describe())
    return report
