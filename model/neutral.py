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
    sample = ab[:, :, ::step, ::step].float().flatten(2)  # (B, 2, n)
    magnitude = sample.norm(dim=1)  # (B, n)
    k = max(1, int(round(share * magnitude.shape[1])))
    _, idx = magnitude.topk(k, dim=1, largest=False, sorted=False)
    floor = torch.gather(sample, 2, idx[:, None, :].expand(-1, 2, -1)).mean(dim=2)  # (B, 2)
    return ab - floor[:, :, None, None].to(ab.dtype)
