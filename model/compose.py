"""Turn predicted chroma back into a picture: upsample a*b* to full resolution, recombine with the input's own
L*, convert to 8-bit sRGB. Pure CPU-friendly functions, so pipelines can run them in CPU tasks while the GPU
only predicts chroma.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from model.color import lab_to_srgb8


def _box(x: Tensor, radius: int) -> Tensor:
    return F.avg_pool2d(x, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)


def guided_filter(guide: Tensor, src: Tensor, radius: int = 4, eps: float = 1e-3) -> Tensor:
    """He et al.'s guided filter: edges of ``guide`` (B, 1, H, W) steer the smoothing of ``src`` (B, C, H, W)."""
    mean_i = _box(guide, radius)
    mean_p = _box(src, radius)
    cov_ip = _box(guide * src, radius) - mean_i * mean_p
    var_i = _box(guide * guide, radius) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return _box(a, radius) * guide + _box(b, radius)


def upsample_chroma(ab: Tensor, lightness: Tensor, mode: str = "bilinear") -> Tensor:
    """Chroma ``(B, 2, h, w)`` predicted on the padded input -> ``(B, 2, H, W)`` matching ``lightness``.

    ``ab`` covers the padded image at half resolution, so it is upsampled x2 and then cropped; ``guided``
    then sharpens colour edges along luminance edges.
    """
    h, w = lightness.shape[-2:]
    up = F.interpolate(ab, scale_factor=2, mode="bilinear", align_corners=False)[..., :h, :w]
    if mode == "guided":
        up = guided_filter(lightness / 100.0, up)
    return up


def compose_lab(
    lightness: np.ndarray, ab_half: np.ndarray, mode: str = "bilinear", device: torch.device | None = None
) -> np.ndarray:
    """Recombine one image's L* ``(H, W)`` with half-resolution a*b* ``(2, h, w)``: 8-bit sRGB ``(H, W, 3)``.
    ``device``: where to compute (default: the CPU); on a GPU only the 8-bit result comes back."""
    lum = torch.from_numpy(np.ascontiguousarray(lightness, dtype=np.float32))[None, None]
    ab = torch.from_numpy(np.ascontiguousarray(ab_half, dtype=np.float32))[None]
    if device is not None:
        lum, ab = lum.to(device, non_blocking=True), ab.to(device, non_blocking=True)
    ab_full = upsample_chroma(ab, lum, mode)
    lab = torch.cat((lum, ab_full), dim=1)[0]
    return lab_to_srgb8(lab)  # L* kept: out-of-gamut colours lose chroma, not lightness
