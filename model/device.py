"""The one place a device name (``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``...) becomes a torch device."""

from __future__ import annotations

import torch


def resolve_device(name: str) -> torch.device:
    """``"auto"``: the first GPU when there is one, else the CPU. Fails loudly when CUDA is asked for but absent,
    rather than silently running on the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("CUDA was requested but no CUDA device is available")
    return device
