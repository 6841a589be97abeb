"""How much chroma a checkpoint's photos lack, per source, inside and outside its training pack.

    python -m benchmarks.chroma_shift --data <pack>/manifest.csv --check-set natural --check-set calibration \
        --components 0 8 32 --threads 2 model/weights/default.safetensors

A network fitted to one pack learns that pack's colour. Its chroma level (:mod:`model.chroma_level`) scales each
photo's a*b* by a factor read from the network's own statistics, fitted on training photos; where the photos
users bring are more (or less) colourful than the pack's, no statistic fitted on the pack can know it. Per
source of the evaluated ``--split`` and per check set this reports the photos' mean chroma (mean |a*b*| of the
truth and of the colorized photo as delivered) and the factor still missing,
``exp(mean log((truth + 0.5) / (output + 0.5)))``: about 1 where the level is unbiased, above 1 where the
output stays too grey.

``--components K ...``: the factor the level still misses after refitting it on the ``--fit-split`` photos with
the first K principal components of the network's global vector (its scene features: for the ``prior``
family, the ImageNet backbone's projected embedding beside Iizuka's global features) as extra statistics,
measured as the level is fitted (against the network's a*b* before the level), so K = 0 is the level's own
four statistics refitted, 1.00 on the fit photos. If such a vector knew which photos are more colourful than
the pack's, the factor outside the pack would fall towards 1.
"""

from __future__ import annotations

import argparse
import platform
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

OFFSET = 0.5  # a*b* units added before each log, as in model.chroma_level


@dataclass(frozen=True)
class Measured:
    """Per photo: the level's statistics ``(N, 4)``, the global vector ``(N, G)``, the mean chroma ``(N,)`` of the
    truth and of the colorized photo as delivered, and the source each photo belongs to."""

    features: np.ndarray
    vectors: np.ndarray
    truth: np.ndarray
    output: np.ndarray
    sources: list[str]


def measure(colorizer: Any, photos: Sequence[tuple[str, np.ndarray]], batch_size: int = 32) -> Measured:
    """Colorize ``(source, rgb)`` photos (made greyscale) and gather what :func:`shift_rows` reads."""
    from model.color import srgb8_to_ab, srgb8_to_lightness
    from model.imageio import DecodedImage

    def chroma(rgb: np.ndarray) -> float:
        return float(np.hypot(*srgb8_to_ab(rgb, torch.float64)).mean())

    features, vectors, truth, output = [], [], [], []
    for start in range(0, len(photos), batch_size):
        batch = [rgb for _, rgb in photos[start : start + batch_size]]
        planes = [srgb8_to_lightness(rgb) for rgb in batch]
        features.append(colorizer.level_features(planes))
        vectors.append(colorizer.global_features(planes))
        truth += [chroma(rgb) for rgb in batch]
        decoded = [DecodedImage(lightness=plane, mode="RGB") for plane in planes]
        output += [chroma(image.rgb) for image in colorizer.colorize_batch(decoded)]
    return Measured(
        np.concatenate(features).astype(np.float64),
        np.concatenate(vectors).astype(np.float64),
        np.asarray(truth),
        np.asarray(output),
        [source for source, _ in photos],
    )


def missing_factor(truth: np.ndarray, output: np.ndarray) -> float:
    """``exp(mean log((truth + OFFSET) / (output + OFFSET)))``: the chroma factor a set of photos still lacks."""
    return float(np.exp(np.mean(np.log((truth + OFFSET) / (output + OFFSET)))))


def refit(fit: Measured, components: int, ridge: float = 10.0) -> Callable[[Measured], np.ndarray]:
    """The level refitted on ``fit`` with the first ``components`` principal components of the global vector
    as extra statistics: a function from photos to their fitted ``log`` factors (within the level's limits)."""
    from model.chroma_level import LIMITS, level_target, ridge_fit

    mean = fit.vectors.mean(axis=0)
    basis = np.linalg.svd(fit.vectors - mean, full_matrices=False)[2][:components].T

    def design(m: Measured) -> np.ndarray:
        return np.c_[m.features, (m.vectors - mean) @ basis]

    coef, bias = ridge_fit(design(fit), level_target(fit.features, fit.truth), ridge)
    low, high = np.log(LIMITS)
    return lambda m: np.clip(design(m) @ coef + bias, low, high)


def shift_rows(sets: dict[str, Measured], fit: Measured | None, components: Sequence[int]) -> list[dict[str, Any]]:
    """One row per source of each set: photos, mean chroma of truth and output, the factor still missing as
    the checkpoint stands and, for each ``components`` K, after the level is refitted on ``fit`` with K."""
    from model.chroma_level import level_target

    fitted = {k: refit(fit, k) for k in components} if fit is not None else {}
    rows = []
    for name, m in sets.items():
        sources = np.asarray(m.sources)
        for source in dict.fromkeys(m.sources):
            keep = sources == source
            row: dict[str, Any] = {
                "set": name,
                "source": source,
                "photos": int(keep.sum()),
                "truth_chroma": float(m.truth[keep].mean()),
                "output_chroma": float(m.output[keep].mean()),
                "missing": missing_factor(m.truth[keep], m.output[keep]),
            }
            residual = level_target(m.features, m.truth)  # log factor the level would need, per photo
            for k, predict in fitted.items():
                row[f"missing_refit_{k}"] = float(np.exp((residual - predict(m))[keep].mean()))
            rows.append(row)
    return rows


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("weights", help="checkpoint with a chroma level (family prior or fusion)")
    parser.add_argument("--data", required=True, help="CSV manifest or folder of colour photos")
    parser.add_argument("--split", default="val", help="the split reported per source")
    parser.add_argument("--check-set", action="append", default=[], help="also report a check set (repeatable)")
    parser.add_argument("--fit-split", default="train", help="the photos --components refits the level on")
    parser.add_argument("--fit-limit", type=int, default=4000, help="random photos of --fit-split (seed 0)")
    parser.add_argument("--components", type=int, nargs="*", default=[], help="global-vector components K")
    parser.add_argument("--max-side", type=int, default=256)
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from benchmarks.models import load_models
    from model.checkset import check_set
    from model.photos import read_samples
    from model.training.data import load_source

    colorizer = load_models([f"model={args.weights}"])["model"]
    source = load_source(args.data)
    sets = {args.split: measure(colorizer, list(read_samples(source.split(args.split), args.max_side)))}
    for name in args.check_set:
        sets[name] = measure(colorizer, check_set(name, args.max_side))
    fit = None
    if args.components:
        samples = source.split(args.fit_split)
        random.Random(0).shuffle(samples)
        fit = measure(colorizer, list(read_samples(samples[: args.fit_limit], args.max_side)))
    rows = shift_rows(sets, fit, args.components)
    refits = "".join(f" missing, refit K={k} |" for k in args.components)
    print(f"| set | source | photos | truth chroma | output chroma | missing factor |{refits}")
    print("|---|---|---:|---:|---:|---:|" + "---:|" * len(args.components))
    for r in rows:
        cells = "".join(f" {r[f'missing_refit_{k}']:.2f} |" for k in args.components)
        print(
            f"| {r['set']} | {r['source'] or '-'} | {r['photos']} | {r['truth_chroma']:.1f} | "
            f"{r['output_chroma']:.1f} | {r['missing']:.2f} |{cells}"
        )
    fitted_on = f"; refits on {len(fit.truth)} {args.fit_split!r} photos" if fit is not None else ""
    print(f"\n({platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads{fitted_on})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
