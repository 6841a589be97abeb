"""Colour quality of a colorizer against ground truth, with two baselines computed in the same run.

Each colour photo is made greyscale (its CIE L*), colorized, and compared with the original:

* **PSNR** on 8-bit RGB (per image, then averaged; identical images count as 100 dB),
* **SSIM** on 8-bit RGB (scikit-image, 7x7 window, channels averaged),
* **colourfulness** M of Hasler & Süsstrunk (2003) and its absolute difference **|ΔCF|** to the original's,
* **AuC**: Zhang et al. (2016)'s area under the cumulative distribution of per-pixel a*b* error over the
  thresholds 0, 1, ..., 150 (normalised to [0, 1]; 1 = every pixel exact).

Baselines: ``greyscale`` (a*b* = 0, the input itself) and ``mean_ab`` (every pixel gets the training set's mean
a*b*). Every output keeps the input's L*, so the metrics measure colour only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image
from skimage.metrics import structural_similarity

from model.color import srgb8_to_ab, srgb8_to_lightness
from model.compose import compose_lab
from model.imageio import DecodedImage

METRICS = ("psnr", "ssim", "colorfulness", "delta_cf", "auc")
ROWS = ("model", "greyscale", "mean_ab")
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


@dataclass
class _Accumulator:
    sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(METRICS, 0.0))

    def add(self, truth: np.ndarray, pred: np.ndarray, truth_cf: float) -> None:
        cf = colorfulness(pred)
        self.sums["psnr"] += psnr(truth, pred)
        self.sums["ssim"] += ssim(truth, pred)
        self.sums["colorfulness"] += cf
        self.sums["delta_cf"] += abs(cf - truth_cf)
        self.sums["auc"] += ab_error_auc(truth, pred)

    def means(self, n: int) -> dict[str, float]:
        return {k: round(v / max(n, 1), 4) for k, v in self.sums.items()}


def constant_ab(lightness: np.ndarray, ab: Sequence[float]) -> np.ndarray:
    """An image's L* with one a*b* everywhere, as 8-bit sRGB (through the predictor's own composition)."""
    h, w = lightness.shape
    half = np.empty((2, (h + 1) // 2, (w + 1) // 2), dtype=np.float32)
    half[0], half[1] = ab[0], ab[1]
    return compose_lab(lightness, half)


def evaluate(
    colorizer: Any, images: Iterable[np.ndarray], mean_ab: Sequence[float], *, batch_size: int = 32
) -> dict[str, Any]:
    """Mean metrics of ``colorizer`` and both baselines over 8-bit RGB ``images`` ``(H, W, 3)``.

    Returns ``{"results": {"model": {...}, "greyscale": {...}, "mean_ab": {...}, "ground_truth":
    {"colorfulness": ...}}}``; ``colorizer`` is a :class:`model.Colorizer`."""
    return {"results": evaluate_models({"model": colorizer}, images, mean_ab, batch_size=batch_size)}


def evaluate_models(
    colorizers: dict[str, Any], images: Iterable[np.ndarray], mean_ab: Sequence[float], *, batch_size: int = 32
) -> dict[str, dict[str, float]]:
    """Like :func:`evaluate` for several models on the same photos in one pass: one row per model name, then
    ``greyscale``, ``mean_ab`` and ``ground_truth``."""
    rows = [*colorizers, "greyscale", "mean_ab"]
    if len(set(rows)) != len(rows):
        raise ValueError("model names must differ from each other and from the baselines")
    acc = {row: _Accumulator() for row in rows}
    truth_cf_sum, n = 0.0, 0
    for batch in batched(images, batch_size):
        planes = [srgb8_to_lightness(rgb) for rgb in batch]
        outputs = {
            name: colorizer.colorize_batch([DecodedImage(lightness=p, mode="RGB") for p in planes])
            for name, colorizer in colorizers.items()
        }
        for i, (truth, plane) in enumerate(zip(batch, planes, strict=True)):
            truth_cf = colorfulness(truth)
            truth_cf_sum += truth_cf
            for name in colorizers:
                acc[name].add(truth, outputs[name][i].rgb, truth_cf)
            acc["greyscale"].add(truth, constant_ab(plane, (0.0, 0.0)), truth_cf)
            acc["mean_ab"].add(truth, constant_ab(plane, mean_ab), truth_cf)
            n += 1
    if n == 0:
        raise ValueError("no images to evaluate")
    results: dict[str, Any] = {row: acc[row].means(n) for row in rows}
    results["ground_truth"] = {"colorfulness": round(truth_cf_sum / n, 4)}
    return results


def batched(images: Iterable[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    """Lists of at most ``size`` items, streamed."""
    batch: list[np.ndarray] = []
    for image in images:
        batch.append(image)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def fit_max_side(image: Image.Image, max_side: int | None) -> np.ndarray:
    """8-bit RGB array of ``image``, downscaled (Lanczos) so that its longer side is at most ``max_side``."""
    image = image.convert("RGB")
    if max_side and max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8)


def format_table(report: dict[str, Any], title: str = "") -> str:
    """A fixed-width table: one row per model/baseline, plus the ground truth's colourfulness."""
    res = report["results"]
    lines = [title] if title else []
    lines.append(f"{'':<12} {'PSNR dB':>8} {'SSIM':>7} {'colourful':>10} {'|ΔCF|':>7} {'AuC':>7}")
    for row in ROWS:
        m = res[row]
        lines.append(
            f"{row:<12} {m['psnr']:>8.2f} {m['ssim']:>7.4f} {m['colorfulness']:>10.2f} "
            f"{m['delta_cf']:>7.2f} {m['auc']:>7.4f}"
        )
    lines.append(f"{'ground truth':<12} {'':>8} {'':>7} {res['ground_truth']['colorfulness']:>10.2f}")
    return "\n".join(lines)


def markdown_table(rows: dict[str, dict[str, float]], truth_cf: float) -> str:
    """The same metrics as a Markdown table (model cards, documentation)."""
    out = [
        "| | PSNR (dB) | SSIM | colourfulness | \\|ΔCF\\| | AuC |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, m in rows.items():
        out.append(
            f"| {name} | {m['psnr']:.2f} | {m['ssim']:.4f} | {m['colorfulness']:.2f} | "
            f"{m['delta_cf']:.2f} | {m['auc']:.4f} |"
        )
    out.append(f"| ground truth | | | {truth_cf:.2f} | | |")
    return "\n".join(out)


def read_images(paths: Iterable[Any], max_side: int | None, skipped: list[str] | None = None) -> Iterator[np.ndarray]:
    """Decode colour photos (upright, RGB, at most ``max_side``); unreadable files are skipped and listed in
    ``skipped``."""
    from model.training.data import open_rgb

    for path in paths:
        try:
            image = open_rgb(path)
        except (OSError, ValueError) as exc:
            if skipped is not None:
                skipped.append(f"{path}: {exc}")
            continue
        yield fit_max_side(image, max_side)
