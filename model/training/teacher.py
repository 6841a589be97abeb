"""Optional teacher: soft ImageNet labels from EfficientNet-Lite0 (Tan & Le 2019), computed offline.

The network and its offline ImageNet weights are in :mod:`model.efficientnet`. The teacher sees the colour
photo; the student learns its distribution through a training-only head (see
:class:`model.training.losses.FusionLoss`), so unlabelled photos carry a global semantic signal as well.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor
from torch.utils.data import DataLoader
from tqdm import tqdm

from model.efficientnet import IMAGENET_CLASSES, INPUT_SIZE, load_teacher
from model.training.data import PhotoDataset, Sample

log = logging.getLogger(__name__)

@torch.inference_mode()
def soft_labels(
    samples: list[Sample],
    cache: Path,
    *,
    device: torch.device,
    batch_size: int = 64,
    workers: int = 2,
    top_k: int = 20,
    size: int = INPUT_SIZE,
    progress: bool = True,
) -> Tensor:
    """Teacher probabilities ``(N, 1000)`` (float16) for the central square of each photo at ``size`` px
    (224 = the teacher's own resolution; less is faster), kept sparse (top ``top_k`` renormalised) and cached
    in ``cache`` (computed once per data set)."""
    if cache.is_file():
        stored = load_file(str(cache))
        if stored["probs"].shape[0] == len(samples):
            return stored["probs"]
        log.warning("teacher cache %s is for another data set; recomputing", cache)
    teacher = load_teacher().to(device)
    loader = DataLoader(PhotoDataset(samples, size, augment=False), batch_size=batch_size, num_workers=workers)
    probs = torch.zeros(len(samples), IMAGENET_CLASSES, dtype=torch.float16)
    for rgb, _, index in tqdm(loader, desc="teacher soft labels", unit="batch", disable=not progress):
        p = teacher(rgb.to(device).float() / 255.0).float().softmax(dim=1)
        top = p.topk(top_k, dim=1)
        sparse = torch.zeros_like(p).scatter_(1, top.indices, top.values)
        probs[index] = (sparse / sparse.sum(dim=1, keepdim=True)).half().cpu()
    cache.parent.mkdir(parents=True, exist_ok=True)
    save_file({"probs": probs}, str(cache))
    return probs
