"""Colour quality of a colorizer against ground truth, with two baselines computed in the same run.

Each colour photo is made greyscale (its CIE L*), colorized, and compared with the original:

* **PSNR** on 8-bit RGB (per image, then averaged; identical images count as 100 dB),
* **SSIM** on 8-bit RGB (scikit-image, 7x7 window, channels averaged),
* **colourfulness** M of Hasler & Süsstrunk (2003) and its absolute difference **|ΔCF|** to the original's,
* **AuC**: Zhang et al. (2016)'s area under the cumulative distribution of per-pixel a*b* error over the
  thresholds 0, 1, ..., 150 (normalised to [0, 1]; 1 = every pixel exact).

Baselines: ``greyscale`` (a*b* = 0, the input itself) and ``mean_ab`` (every pixel gets the training set's mean
a*b*). Every output keeps the input's L*, so the metrics measure colour only.

Photos whose ground truth is itself greyscale are skipped and counted: against a grey truth the greyscale
baseline scores a capped 100 dB, which says nothing about colour and inflates its mean. Photos may carry a
source name (``(source, rgb)`` pairs); the report then has one set of rows per source beside the overall one,
so a model that wins on average but loses on one kind of photo shows it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import torch

from model.color import srgb8_to_ab, srgb8_to_lightness
from model.compose import ChromaGrid, compose
from model.imageio import DecodedImage
from model.metrics import ab_error_auc, colorfulness, is_greyscale, psnr, ssim

METRICS = ("psnr", "ssim", "colorfulness", "delta_cf", "auc")
T = TypeVar("T")
NO_SOURCE = "(none)"
Photo = np.ndarray | tuple[str, np.ndarray]  # 8-bit RGB (H, W, 3), optionally with its source's name


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
    return compose(lightness, half, ChromaGrid(h, w), "bilinear")


def evaluate(
    colorizer: Any, images: Iterable[Photo], mean_ab: Sequence[float], *, batch_size: int = 32
) -> dict[str, Any]:
    """Mean metrics of ``colorizer`` and both baselines over 8-bit RGB ``images`` ``(H, W, 3)`` (or
    ``(source, rgb)`` pairs).

    Returns ``{"results": {"model": {...}, "greyscale": {...}, "mean_ab": {...}, "ground_truth":
    {"colorfulness": ...}}, "images": n, "skipped_greyscale": k, "sources": {name: {"images": n, "results":
    {...}}}}``; ``colorizer`` is a :class:`model.Colorizer`."""
    return evaluate_report({"model": colorizer}, images, mean_ab, batch_size=batch_size)


def evaluate_models(
    colorizers: dict[str, Any], images: Iterable[Photo], mean_ab: Sequence[float], *, batch_size: int = 32
) -> dict[str, dict[str, float]]:
    """Like :func:`evaluate` for several models on the same photos in one pass: the overall rows only, one per
    model name, then ``greyscale``, ``mean_ab`` and ``ground_truth``."""
    return evaluate_report(colorizers, images, mean_ab, batch_size=batch_size)["results"]


@dataclass
class _Group:
    """Running sums of every row over one set of photos (all of them, or one source's)."""

    rows: list[str]
    acc: dict[str, _Accumulator] = field(default_factory=dict)
    truth_cf: float = 0.0
    n: int = 0

    def __post_init__(self) -> None:
        self.acc = {row: _Accumulator() for row in self.rows}

    def add(self, truth: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
        truth_cf = colorfulness(truth)
        for row, pred in outputs.items():
            self.acc[row].add(truth, pred, truth_cf)
        self.truth_cf += truth_cf
        self.n += 1

    def results(self) -> dict[str, Any]:
        out: dict[str, Any] = {row: self.acc[row].means(self.n) for row in self.rows}
        out["ground_truth"] = {"colorfulness": round(self.truth_cf / max(self.n, 1), 4)}
        return out


def _split_photo(photo: Photo) -> tuple[str, np.ndarray]:
    return photo if isinstance(photo, tuple) else ("", photo)


def evaluate_report(
    colorizers: dict[str, Any], images: Iterable[Photo], mean_ab: Sequence[float], *, batch_size: int = 32
) -> dict[str, Any]:
    """Every model and both baselines over ``images``: overall rows, rows per source (when the photos name
    their sources) and the number of greyscale ground truths skipped. The shape :func:`evaluate` returns."""
    rows = [*colorizers, "greyscale", "mean_ab"]
    if len(set(rows)) != len(rows):
        raise ValueError("model names must differ from each other and from the baselines")
    overall, skipped = _Group(rows), 0
    by_source: dict[str, _Group] = {}
    for batch in batched(images, batch_size):
        photos = [_split_photo(p) for p in batch]
        kept = [(src, rgb) for src, rgb in photos if not is_greyscale(rgb)]
        skipped += len(photos) - len(kept)
        if not kept:
            continue
        planes = [srgb8_to_lightness(rgb) for _, rgb in kept]
        outputs = {
            name: colorizer.colorize_batch([DecodedImage(lightness=p, mode="RGB") for p in planes])
            for name, colorizer in colorizers.items()
        }
        for i, ((src, truth), plane) in enumerate(zip(kept, planes, strict=True)):
            preds = {name: outputs[name][i].rgb for name in colorizers}
            preds["greyscale"] = constant_ab(plane, (0.0, 0.0))
            preds["mean_ab"] = constant_ab(plane, mean_ab)
            overall.add(truth, preds)
            by_source.setdefault(src, _Group(rows)).add(truth, preds)
    if overall.n == 0:
        raise ValueError(f"no colour images to evaluate ({skipped} greyscale skipped)")
    named = any(by_source)  # some photo names a source
    sources = {src or NO_SOURCE: {"images": g.n, "results": g.results()} for src, g in sorted(by_source.items())}
    return {
        "results": overall.results(),
        "images": overall.n,
        "skipped_greyscale": skipped,
        "sources": sources if named else {},
    }


def mean_ab_of(images: Iterable[Photo]) -> tuple[float, float]:
    """Mean a*b* over every pixel of the colour photos among ``images`` (the ``mean_ab`` baseline when no
    training set is known)."""
    total, pixels = np.zeros(2), 0
    for photo in images:
        _, rgb = _split_photo(photo)
        if not is_greyscale(rgb):
            total += srgb8_to_ab(rgb, torch.float64).reshape(2, -1).sum(axis=1)
            pixels += rgb.shape[0] * rgb.shape[1]
    mean = total / max(pixels, 1)
    return round(float(mean[0]), 3), round(float(mean[1]), 3)


def batched(images: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of at most ``size`` items, streamed."""
    batch: list[T] = []
    for image in images:
        batch.append(image)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def format_table(report: dict[str, Any], title: str = "") -> str:
    """A fixed-width table: one row per model/baseline, plus the ground truth's colourfulness; then the same
    rows per source when the photos name two or more, and the count of greyscale ground truths skipped."""
    lines = [title] if title else []
    header = f"{'':<12} {'PSNR dB':>8} {'SSIM':>7} {'colourful':>10} {'|ΔCF|':>7} {'AuC':>7}"
    lines += [header, *_rows_text(report["results"], "")]
    sources = report.get("sources") or {}
    if len(sources) >= 2:
        width = max(len(name) for name in sources) + 2
        lines += ["", f"{'per source':<{width}}{'photos':>6} " + header]
        for name, entry in sources.items():
            lines += [f"{name:<{width}}{entry['images']:>6} " + line for line in _rows_text(entry["results"], "")]
    if "skipped_greyscale" in report:
        lines.append(f"{report['skipped_greyscale']} photo(s) with a greyscale ground truth skipped")
    return "\n".join(lines)


def _rows_text(res: dict[str, Any], indent: str) -> list[str]:
    lines = []
    for row in [r for r in res if r != "ground_truth"]:
        m = res[row]
        lines.append(
            f"{indent}{row:<12} {m['psnr']:>8.2f} {m['ssim']:>7.4f} {m['colorfulness']:>10.2f} "
            f"{m['delta_cf']:>7.2f} {m['auc']:>7.4f}"
        )
    lines.append(f"{indent}{'ground truth':<12} {'':>8} {'':>7} {res['ground_truth']['colorfulness']:>10.2f}")
    return lines


def markdown_sources(report: dict[str, Any], model: str = "model") -> str:
    """Per-source rows as a Markdown table: ``model`` against both baselines (and overall, last)."""
    out = [
        f"| source | photos | PSNR {model} / grey / mean a\\*b\\* (dB) | colourfulness {model} / truth "
        f"| AuC {model} / grey |",
        "|---|---:|---|---|---|",
    ]
    entries = {**(report.get("sources") or {}), "**all**": {"images": report.get("images"), **report}}
    for name, entry in entries.items():
        r = entry["results"]
        m, g, a = r[model], r["greyscale"], r["mean_ab"]
        out.append(
            f"| {name} | {entry['images']} | {m['psnr']:.2f} / {g['psnr']:.2f} / {a['psnr']:.2f} | "
            f"{m['colorfulness']:.2f} / {r['ground_truth']['colorfulness']:.2f} | {m['auc']:.4f} / {g['auc']:.4f} |"
        )
    return "\n".join(out)


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
