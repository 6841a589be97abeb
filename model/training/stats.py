"""One pass over the training photos: mean a*b* (the ``mean_ab`` baseline and the model card) and the a*b*
bin histogram (class rebalancing of the classification variant)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import DataLoader
from tqdm import tqdm

from model.color import rgb_to_lab
from model.quantize import ABQuantizer
from model.training.data import PhotoDataset, Sample


@dataclass
class DataStats:
    """What a loss may need from the training set: mean a*b* and the a*b* bin histogram (for rebalancing)."""

    mean_ab: tuple[float, float]
    ab_histogram: Tensor  # (Q,) pixel counts per gamut bin of an ABQuantizer(grid=10)
    images: int


@torch.inference_mode()
def compute_stats(
    samples: Sequence[Sample],
    size: int,
    *,
    device: torch.device | None = None,
    batch_size: int = 64,
    workers: int = 0,
    progress: bool = True,
) -> DataStats:
    """Mean a*b* over every pixel of the central squares (at ``size``) and their bin histogram."""
    device = device or torch.device("cpu")
    quantizer = ABQuantizer(10.0).to(device)
    loader = DataLoader(PhotoDataset(samples, size, augment=False), batch_size=batch_size, num_workers=workers)
    total = torch.zeros(2, dtype=torch.float64, device=device)
    hist = torch.zeros(quantizer.num_bins, dtype=torch.float64, device=device)
    pixels = 0
    for rgb, _, _ in tqdm(loader, desc="data statistics", unit="batch", disable=not progress):
        ab = rgb_to_lab(rgb.to(device).float() / 255.0)[:, 1:]
        total += ab.double().sum(dim=(0, 2, 3))
        pixels += ab.shape[0] * ab.shape[2] * ab.shape[3]
        idx = quantizer.nearest(ab).flatten()
        hist += torch.bincount(idx[idx >= 0], minlength=quantizer.num_bins).double()
    mean = (total / max(pixels, 1)).tolist()
    return DataStats(
        mean_ab=(round(mean[0], 3), round(mean[1], 3)), ab_histogram=hist.float().cpu(), images=len(samples)
    )
