"""Neutral where the network is unsure: remove the tint a colorization spreads over a whole picture.

A regression network that cannot tell what colour something is answers with its safe average, a warm tint,
and it answers so everywhere at once when the whole photo is unfamiliar (a studio portrait, an interior): the
tint then covers backgrounds, greys and whites alike. Real colour photos almost always keep some neutral
areas, so the least colourful part of a prediction says how large that shared tint is.

:func:`neutral_floor` takes the mean a*b* of the ``share`` least colourful pixels of each prediction (the
tint every pixel carries, objects aside) and subtracts it from all of them. A photo that kept neutral areas
loses almost nothing (their mean is near zero); a tinted one gets its greys back while the colours the
network was sure of keep their hue relative to them. ``share`` = 0 turns it off.
"""

from __future__ import annotations

import torch
from torch import Tensor

from model.config import MAX_NEUTRAL

SAMPLE_PIXELS = 16_384  # the floor is estimated on a regular subsample of about this many pixels


def neutral_floor(ab: Tensor, share: float) -> Tensor:
    """``(B, 2, h, w)`` a*b* -> the same with each image's floor tint removed (see the module docstring)."""
    if share <= 0:
        return ab
    if share > MAX_NEUTRAL:
        raise ValueError(f"neutral share must be within [0, {MAX_NEUTRAL:g}], got {share}")
    h, w = ab.shape[-2:]
    step = max(1, int((h * w / SAMPLE_PIXELS) ** 0.5))
    return ab - floor_tint(ab, share, step)[:, :, None, None].to(ab.dtype)


def floor_tint(ab: Tensor, share: float | Tensor, step: int = 1) -> Tensor:
    """The tint ``(B, 2)``: mean a*b* of the ``share`` least colourful of the pixels sampled every ``step``
    (at least one). Tensor operations only, so it also runs inside an exported graph of any size."""
    sample = ab[:, :, ::step, ::step].float().flatten(2)  # (B, 2, n)
    magnitude = sample.norm(dim=1)  # (B, n)
    order = magnitude.argsort(dim=1)
    rank = torch.ones_like(magnitude).cumsum(dim=1)  # 1, 2, ..., n
    k = (rank[:, -1:] * share).round().clamp(min=1.0)  # (B, 1): how many pixels make the floor
    chosen = (rank <= k).float()  # the first k of the sorted order
    sorted_ab = torch.gather(sample, 2, order[:, None, :].expand(-1, 2, -1))
    return (sorted_ab * chosen[:, None, :]).sum(dim=2) / k
