"""Chroma-gain calibration: how much to saturate a model's a*b* before recombining with L*.

A model trained with a squared error predicts the *mean* of the plausible colours of each pixel, which is
greyer than any one of them: outputs come out washed out. A single multiplier on the predicted a*b* restores
much of the lost colourfulness at a small, measured cost in PSNR. The gain is chosen on training photos (never
the evaluation split) as the largest one whose mean PSNR stays within ``max_psnr_drop`` dB of the unscaled
output and whose mean colourfulness does not exceed the photos' own; it is stored in the checkpoint's card and
applied by the predictor (``PredictorConfig.chroma_gain`` overrides it).

Before the gain, a network with a distribution head can be given a chroma level (:func:`fit_level_checkpoint`,
:mod:`model.chroma_level`): one factor per photo instead of one for all, fitted on training photos.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from model.evaluation import batched
from model.metrics import colorfulness, psnr

DEFAULT_GAINS = tuple(round(1.0 + 0.05 * i, 2) for i in range(21))  # 1.00, 1.05, ..., 2.00


@dataclass(frozen=True)
class Calibration:
    gain: float
    max_psnr_drop: float
    images: int
    truth_colorfulness: float
    rows: list[dict[str, float]] = field(default_factory=list)  # gain, psnr, colorfulness per candidate

    def to_dict(self) -> dict[str, Any]:
        return {
            "gain": self.gain,
            "max_psnr_drop": self.max_psnr_drop,
            "images": self.images,
            "truth_colorfulness": round(self.truth_colorfulness, 4),
            "rows": self.rows,
        }


def calibrate_chroma_gain(
    colorizer: Any,
    images: Iterable[np.ndarray],
    *,
    max_psnr_drop: float = 0.5,
    gains: Sequence[float] = DEFAULT_GAINS,
    batch_size: int = 32,
) -> Calibration:
    """Pick the chroma gain of ``colorizer`` (a :class:`model.Colorizer`) on 8-bit RGB colour ``images``.

    The network runs once per photo; every candidate gain rescales the same a*b*."""
    from model.color import srgb8_to_lightness

    if max_psnr_drop < 0:
        raise ValueError("max_psnr_drop must be >= 0")
    gains = sorted({float(g) for g in gains} | {1.0})
    psnr_sum = np.zeros(len(gains))
    cf_sum = np.zeros(len(gains))
    truth_cf, n = 0.0, 0
    saved_gain, colorizer.chroma_gain = colorizer.chroma_gain, 1.0
    try:
        for batch in batched(images, batch_size):
            planes = [srgb8_to_lightness(rgb) for rgb in batch]
            for truth, plane, pred in zip(batch, planes, colorizer.predict_chroma(planes), strict=True):
                ab = pred.ab.astype(np.float32)
                for k, gain in enumerate(gains):
                    rgb = colorizer.compose(plane, dataclasses.replace(pred, ab=ab * gain))
                    psnr_sum[k] += psnr(truth, rgb)
                    cf_sum[k] += colorfulness(rgb)
                truth_cf += colorfulness(truth)
                n += 1
    finally:
        colorizer.chroma_gain = saved_gain
    if n == 0:
        raise ValueError("no images to calibrate on")
    mean_psnr, mean_cf, truth_cf = psnr_sum / n, cf_sum / n, truth_cf / n
    base = mean_psnr[gains.index(1.0)]
    chosen = 1.0
    for k in range(gains.index(1.0) + 1, len(gains)):  # upwards from 1.0 while both conditions hold
        if mean_psnr[k] < base - max_psnr_drop or mean_cf[k] > truth_cf:
            break
        chosen = gains[k]
    rows = [
        {"gain": g, "psnr": round(float(p), 4), "colorfulness": round(float(c), 4)}
        for g, p, c in zip(gains, mean_psnr, mean_cf, strict=True)
    ]
    return Calibration(chosen, max_psnr_drop, n, truth_cf, rows)


def calibrate_checkpoint(
    weights: str | Path,
    photos: Sequence[Path] = (),
    *,
    split: str = "train",
    check_set: str | None = None,
    limit: int = 500,
    max_psnr_drop: float = 0.5,
    max_side: int | None = 256,
    neutral: float | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    device: str = "auto",
) -> Calibration:
    """Calibrate the checkpoint ``weights`` and store the gain and the sweep in its card (in place, or in
    ``out``): on ``limit`` random ones of ``photos`` (the paths of a data source's ``split``), or on the named
    ``check_set`` (photos outside any training pack, see :mod:`model.checkset`). ``neutral``: also store this
    neutral-floor share (:mod:`model.neutral`) in the card, and calibrate the gain with it applied."""
    from model.checkpoint import update_card
    from model.config import PredictorConfig
    from model.predictor import Colorizer

    images, where = _calibration_images(photos, split, check_set, limit, max_side, seed)
    config = PredictorConfig(device=device, chroma_gain=1.0, neutral=neutral)
    colorizer = Colorizer.from_pretrained(weights, config=config)
    result = calibrate_chroma_gain(colorizer, images, max_psnr_drop=max_psnr_drop)
    changes: dict[str, Any] = {"chroma_gain": result.gain, "calibration": {**where, **result.to_dict()}}
    if neutral is not None:
        changes["neutral"] = neutral
    update_card(weights, changes, out=out)
    return result


@dataclass(frozen=True)
class LevelFit:
    """A fitted chroma level (:mod:`model.chroma_level`): its coefficients and how well they explain the truth."""

    coef: list[float]
    bias: float
    images: int
    r2: float  # share of the variance of log(truth chroma / predicted chroma) the factor explains on these photos
    mean_factor: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def fit_chroma_level(
    colorizer: Any, images: Iterable[np.ndarray], *, ridge: float = 10.0, batch_size: int = 32
) -> LevelFit:
    """Fit the chroma level of ``colorizer``'s network (one with ``chroma_level``) on 8-bit RGB colour ``images``
    and load it into the network: the per-photo statistics against each truth's mean chroma."""
    import torch

    from model.chroma_level import fit_level, level_target
    from model.color import srgb8_to_ab, srgb8_to_lightness

    level = getattr(getattr(colorizer.network, "colorization", None), "level", None)
    if level is None:
        raise ValueError("this network has no chroma level (its config needs chroma_level=True)")
    features: list[np.ndarray] = []
    truths: list[float] = []
    for batch in batched(images, batch_size):
        features.append(colorizer.level_features([srgb8_to_lightness(rgb) for rgb in batch]))
        truths.extend(float(np.hypot(*srgb8_to_ab(rgb, torch.float64)).mean()) for rgb in batch)
    if not truths:
        raise ValueError("no images to fit the chroma level on")
    x, truth = np.concatenate(features).astype(np.float64), np.asarray(truths)
    coef, bias = fit_level(x, truth, ridge=ridge)
    level.load_fit(coef, bias)
    target = level_target(x, truth)
    fitted = x @ coef + bias
    r2 = 1.0 - float(((fitted - target) ** 2).mean() / max(target.var(), 1e-12))
    factor = level.factor(torch.as_tensor(x, dtype=torch.float32)).numpy()
    return LevelFit(
        [round(float(c), 6) for c in coef], round(bias, 6), len(truth), round(r2, 4), round(float(factor.mean()), 4)
    )


def fit_level_checkpoint(
    weights: str | Path,
    photos: Sequence[Path],
    *,
    split: str = "train",
    limit: int = 6000,
    max_side: int | None = 256,
    ridge: float = 10.0,
    neutral: float | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    device: str = "auto",
) -> LevelFit:
    """Give the checkpoint ``weights`` (a network with a distribution head) a chroma level fitted on ``limit``
    random ones of ``photos`` (a data source's ``split``: training photos, never the evaluation split), and
    store it (in place, or in ``out``) with the fit in its card. The decoded chroma it reads is measured after
    the neutral floor of ``neutral`` (default: the card's); as in :func:`calibrate_checkpoint`, a given
    ``neutral`` is also stored as the card's floor, so the predictor applies the floor the level was fitted
    after. Calibrate the chroma gain afterwards."""
    from model.checkpoint import extend_checkpoint, load_checkpoint
    from model.config import PredictorConfig
    from model.predictor import Colorizer

    ckpt = load_checkpoint(weights)
    if getattr(ckpt.config, "distribution", 0.0) <= 0:
        raise ValueError(f"{weights}: the chroma level needs a network with a distribution head (--distribution)")
    config = ckpt.config.replace(chroma_level=True)
    network = _with_level(ckpt, config)
    share = float(ckpt.card.get("neutral", 0.0)) if neutral is None else neutral
    network.colorization.level.set_share(share)
    colorizer = Colorizer(network, family=ckpt.family, card=ckpt.card, config=PredictorConfig(device=device))
    images, where = _calibration_images(photos, split, None, limit, max_side, seed)
    fit = fit_chroma_level(colorizer, images, ridge=ridge)
    tensors = {k: v for k, v in network.state_dict().items() if ".level." in k}
    changes: dict[str, Any] = {"chroma_level": {**where, "neutral": share, **fit.to_dict()}}
    if neutral is not None:
        changes["neutral"] = neutral
    extend_checkpoint(weights, tensors, config=config, changes=changes, out=out)
    return fit


def _with_level(ckpt: Any, config: Any) -> Any:
    """The checkpoint's network rebuilt under ``config``: its stored chroma level, or a new (unfitted) one."""
    from model.families import build_model

    fresh = {k: v for k, v in build_model(ckpt.family, config).state_dict().items() if ".level." in k}
    return dataclasses.replace(ckpt, config=config, state_dict={**fresh, **ckpt.state_dict}).build()


def _calibration_images(
    photos: Sequence[Path], split: str, check_set: str | None, limit: int, max_side: int | None, seed: int
) -> tuple[Iterable[np.ndarray], dict[str, str]]:
    """The photos a calibration runs on, and how the card names them."""
    if check_set is not None:
        from model.checkset import check_set as named_set

        return [rgb for _, rgb in named_set(check_set, max_side)][:limit], {"check_set": check_set}
    from model.photos import read_images

    paths = list(photos)
    if not paths:
        raise ValueError(f"no images in split {split!r}")
    random.Random(seed).shuffle(paths)
    return read_images(paths[:limit], max_side), {"split": split}
