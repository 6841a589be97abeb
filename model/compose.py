"""Turn predicted chroma back into a picture: upsample a*b* from the network's grid to full resolution, guided
by the input's own full-resolution L*, recombine, and convert to 8-bit sRGB keeping L* (out-of-gamut colours
lose chroma, never lightness).

Two implementations of the same maths:

- :func:`compose` (CPU, one image): a fused per-pixel kernel (:mod:`model.compose_kernel`, compiled with numba)
  that samples chroma, converts Lab to linear RGB, fits the gamut and looks up the sRGB curve in one pass over
  the pixels, so a 25-megapixel scan costs a fraction of a second. Without numba it falls back to torch.
- :func:`compose_batch` (any torch device, a batch): the same steps as tensor ops over the stacked pixels of
  the whole batch, with a fixed-step gamut fit (no per-image synchronisation), for GPUs.

Where chroma sits: the network sees L* at a *working size* ``(hw, ww)`` (the full size, or smaller, see
``PredictorConfig.working_size``) padded to its stride, and predicts a*b* at half that padded size. A full-size
pixel centre ``y + 0.5`` is at ``(y + 0.5) * hw / H`` in the working image and at half that on the chroma grid.

``guided`` upsampling is He & Sun's fast guided filter: linear coefficients ``a*b* ~ A * L* + B`` are fitted
on the chroma grid (where the network's guide is L* at that size), then upsampled and applied to the
full-resolution L*, so colour edges follow luminance edges at the cost of two more samples per pixel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from model import compose_kernel
from model.color import lab_to_srgb8_pixels

UPSAMPLE_MODES = ("bilinear", "guided")
GUIDED_RADIUS = 2  # on the chroma grid: a 5x5 window there is 10x10 pixels or more at full size
GUIDED_EPS = 1e-3  # on L*/100: below a local L* spread of ~3 the fit falls back to the local mean colour


@dataclass(frozen=True)
class ChromaGrid:
    """Where a prediction's a*b* sit: the size of the L* plane the network saw, before padding."""

    height: int
    width: int


def _box(x: Tensor, radius: int) -> Tensor:
    """Mean over a ``(2r+1)^2`` window of ``(B, C, h, w)``, edges replicated: OpenCV's box filter on the CPU (20x
    faster than torch's pooling there), the same sums with torch elsewhere."""
    cv2 = _opencv()
    if x.device.type == "cpu" and cv2 is not None:
        b, c, h, w = x.shape
        hwc = np.ascontiguousarray(x.reshape(b * c, h, w).permute(1, 2, 0).numpy(), dtype=np.float32)
        size = (2 * radius + 1, 2 * radius + 1)
        out = cv2.blur(hwc, size, borderType=cv2.BORDER_REPLICATE).reshape(h, w, b * c)
        return torch.from_numpy(out).permute(2, 0, 1).reshape(b, c, h, w)
    padded = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    return F.avg_pool2d(padded, 2 * radius + 1, stride=1)


def guided_coefficients(guide: Tensor, ab: Tensor, radius: int = GUIDED_RADIUS, eps: float = GUIDED_EPS) -> Tensor:
    """Fast guided filter coefficients ``(B, 4, h, w)``: ``A_a, A_b, B_a, B_b`` with ``ab ~ A * guide + B``.
    ``guide``: ``(B, 1, h, w)`` L*/100 on the chroma grid; ``ab``: ``(B, 2, h, w)``."""
    mean_i = _box(guide, radius)
    mean_p = _box(ab, radius)
    cov_ip = _box(guide * ab, radius) - mean_i * mean_p
    var_i = _box(guide * guide, radius) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return torch.cat((_box(a, radius), _box(b, radius)), dim=1)


def _opencv() -> Any:
    try:
        import cv2
    except ImportError:  # a GPU host's image without OpenCV: torch's resize, same result within rounding
        return None
    return cv2


def resize_area(plane: Tensor, size: tuple[int, int]) -> Tensor:
    """An ``(H, W)`` plane area-averaged to ``size`` (h, w): OpenCV's SIMD resize on the CPU (several times
    faster than torch's there on a 25-megapixel plane), torch's on other devices."""
    if tuple(plane.shape) == tuple(size):
        return plane
    cv2 = _opencv()
    if plane.device.type == "cpu" and cv2 is not None:
        small = cv2.resize(np.ascontiguousarray(plane.numpy(), np.float32), size[::-1], interpolation=cv2.INTER_AREA)
        return torch.from_numpy(small.reshape(size))
    return F.interpolate(plane[None, None].float(), size=size, mode="area")[0, 0]


def _grid_guide(lightness: Tensor, grid: ChromaGrid, shape: tuple[int, int]) -> Tensor:
    """L*/100 ``(1, 1, h, w)`` on the chroma grid ``shape``: the full plane resized to the grid's valid part,
    edge-padded over the part that covers the network's padding."""
    hc, wc = shape
    vh, vw = max(1, min(hc, -(-grid.height // 2))), max(1, min(wc, -(-grid.width // 2)))
    small = resize_area(lightness.float(), (vh, vw))[None, None]
    return F.pad(small, (0, wc - vw, 0, hc - vh), mode="replicate") / 100.0


def chroma_planes(lightness: Tensor, ab: Tensor, grid: ChromaGrid, mode: str) -> Tensor:
    """What the per-pixel step samples: ``(2, h, w)`` a*b* (bilinear) or ``(4, h, w)`` coefficients (guided)."""
    if mode not in UPSAMPLE_MODES:
        raise ValueError(f"upsample must be one of {UPSAMPLE_MODES}, got {mode!r}")
    if mode == "bilinear":
        return ab
    guide = _grid_guide(lightness, grid, tuple(ab.shape[-2:]))  # type: ignore[arg-type]
    return guided_coefficients(guide, ab[None].float())[0]


def _scales(grid: ChromaGrid, height: int, width: int) -> tuple[float, float]:
    """Full-size pixel -> chroma-grid coordinate factors (see the module docstring)."""
    return grid.height / (2.0 * height), grid.width / (2.0 * width)


def compose(lightness: np.ndarray, ab: np.ndarray, grid: ChromaGrid, mode: str = "bilinear") -> np.ndarray:
    """One image on the CPU: L* ``(H, W)`` + a*b* ``(2, h, w)`` on ``grid`` -> 8-bit sRGB ``(H, W, 3)``."""
    lum = np.ascontiguousarray(lightness, dtype=np.float32)
    planes = torch.from_numpy(np.ascontiguousarray(ab, dtype=np.float32))
    if mode != "bilinear":
        planes = chroma_planes(torch.from_numpy(lum), planes, grid, mode)
    height, width = lum.shape
    sy, sx = _scales(grid, height, width)
    if compose_kernel.available():
        return compose_kernel.compose(lum, planes.numpy(), sy, sx)
    return compose_batch([torch.from_numpy(lum)], [planes], [grid], "precomputed")[0].numpy()


def _sample(planes: Tensor, height: int, width: int, sy: float, sx: float) -> Tensor:
    """Bilinear samples ``(C, H, W)`` of ``planes`` ``(C, h, w)`` at full-size pixel centres, clamped at the
    edges exactly as the CPU kernel does."""
    hc, wc = planes.shape[-2:]
    dev, dt = planes.device, planes.dtype
    fy = ((torch.arange(height, device=dev, dtype=dt) + 0.5) * sy - 0.5).clamp(0, hc - 1)
    fx = ((torch.arange(width, device=dev, dtype=dt) + 0.5) * sx - 0.5).clamp(0, wc - 1)
    y0, x0 = fy.floor().long(), fx.floor().long()
    y1, x1 = (y0 + 1).clamp(max=hc - 1), (x0 + 1).clamp(max=wc - 1)
    wy, wx = (fy - y0)[:, None], (fx - x0)[None, :]
    top = planes[:, y0][:, :, x0] * (1 - wx) + planes[:, y0][:, :, x1] * wx
    bottom = planes[:, y1][:, :, x0] * (1 - wx) + planes[:, y1][:, :, x1] * wx
    return top * (1 - wy) + bottom * wy


def compose_batch(
    lightness: Sequence[Tensor], ab: Sequence[Tensor], grids: Sequence[ChromaGrid], mode: str = "bilinear"
) -> list[Tensor]:
    """A batch on ``lightness``'s device: L* ``(H, W)`` float tensors + a*b* ``(2, h, w)`` -> ``(H, W, 3)`` uint8
    tensors on the same device. ``mode="precomputed"``: ``ab`` already holds :func:`chroma_planes`."""
    columns = []
    for lum, planes, grid in zip(lightness, ab, grids, strict=True):
        lum = lum.float()
        planes = planes.to(lum.device, torch.float32)
        if mode != "precomputed":
            planes = chroma_planes(lum, planes, grid, mode)
        height, width = lum.shape
        sampled = _sample(planes, height, width, *_scales(grid, height, width))
        if sampled.shape[0] == 4:  # guided: a*b* = A * L*/100 + B
            sampled = sampled[:2] * (lum / 100.0) + sampled[2:]
        columns.append(torch.cat((lum[None], sampled)).reshape(3, -1))
    stacked = torch.cat(columns, dim=1)  # (3, all pixels of the batch): one conversion, no per-image sync
    rgb = lab_to_srgb8_pixels(stacked)  # (N, 3) uint8
    out, start = [], 0
    for lum in lightness:
        n = lum.numel()
        out.append(rgb[start : start + n].reshape(*lum.shape, 3))
        start += n
    return out

