"""Per-image colour metrics against ground truth, on 8-bit RGB: PSNR (capped at 100 dB for identical images),
SSIM, the colourfulness of Hasler & Süsstrunk (2003), and Zhang et al. (2016)'s a*b* error AuC. The one
definition of each, used by evaluation, calibration and the benchmarks (video included)."""

from __future__ import annotations

import math

import numpy as np
import torch
from skimage.metrics import structural_similarity

from model.color import srgb8_to_ab

AUC_THRESHOLDS = np.arange(0, 151, dtype=np.float64)  # a*b* error thresholds 0..150, as in Zhang et al.
PSNR_CAP = 100.0


def psnr(truth: np.ndarray, pred: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two 8-bit images, in dB (capped at 100 dB for identical images)."""
    mse = float(np.mean((truth.astype(np.float64) - pred.astype(np.float64)) ** 2))
    return PSNR_CAP if mse == 0 else min(PSNR_CAP, 10.0 * math.log10(255.0**2 / mse))


def ssim(truth: np.ndarray, pred: np.ndarray) -> float:
    """Structural similarity of two 8-bit RGB images (a smaller odd window for images under 7 pixels)."""
    side = min(truth.shape[:2])
    win = min(7, side if side % 2 else side - 1)
    return float(
        structural_similarity(truth, pred, channel_axis=2, data_range=255, win_size=win, use_sample_covariance=win > 1)
    )


def colorfulness(rgb: np.ndarray) -> float:
    """Hasler & Süsstrunk's M = σ_rgyb + 0.3 μ_rgyb with rg = R - G and yb = (R + G) / 2 - B (8-bit values)."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def ab_error_auc(truth: np.ndarray, pred: np.ndarray) -> float:
    """Mean over thresholds t = 0..150 of the share of pixels whose a*b* error is at most t."""
    err = np.sort(np.hypot(*(srgb8_to_ab(truth, torch.float64) - srgb8_to_ab(pred, torch.float64))).ravel())
    within = np.searchsorted(err, AUC_THRESHOLDS, side="right") / err.size
    return float(within.mean())


GREY_CHROMA = 2.0  # a*b* units, about one just-noticeable difference: below it a pixel is grey to the eye


def is_greyscale(rgb: np.ndarray, tolerance: float = GREY_CHROMA) -> bool:
    """True when 99 % of the pixels have a chroma (a*b* distance to grey) of at most ``tolerance``: a greyscale
    photo stored as RGB, allowing for compression noise and a few stray pixels."""
    ab = srgb8_to_ab(rgb, torch.float32)
    return float(np.percentile(np.hypot(ab[0], ab[1]), 99)) <= tolerance
