"""Global colour casts of colorized photos: how much of a picture's colour is one hue spread all over it.

    python -m benchmarks.casts --photos FOLDER shipped=model/weights/default.safetensors prior=runs/p/model.safetensors

For each photo (made greyscale, colorized), over its pixels' predicted a*b*:

* **chroma**: the mean a*b* magnitude (how colourful);
* **cast**: ``|mean a*b*| / mean |a*b*|`` in [0, 1]: 1 when every pixel has the same hue (a tint over the whole
  photo, e.g. a portrait red-orange all over), near 0 when hues vary across the picture as in real colour photos;
* **floor**: the 10th percentile of the pixels' a*b* magnitude: a cast tints even the greys and whites, so
  nine pixels in ten carry colour; real photos usually keep some neutral areas;
* **hue**: the direction of the mean a*b*, in degrees (0 = red-magenta, 90 = yellow, 180 = green, 270 = blue).

A photo counts as *cast* when its cast ratio exceeds ``--cast`` (default 0.8) and its floor exceeds 5 a*b*
units (nine pixels in ten visibly tinted the same way). ``--check-set natural`` measures the same on
scikit-image's colour photos, both colorized and as the ground truth, for reference: real colour photos have
casts too (a warm interior), so the ratio says how uniform the hue is, not whether it is wrong.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

MIN_CHROMA = 5.0  # a*b* units: below this a tint is barely visible


def cast_stats(rgb: np.ndarray) -> tuple[float, float, float, float]:
    """``(chroma, cast ratio, floor, hue in degrees)`` of an 8-bit RGB image."""
    from model.color import srgb8_to_ab

    ab = srgb8_to_ab(rgb, torch.float32).reshape(2, -1).astype(np.float64)
    magnitude = np.hypot(ab[0], ab[1])
    chroma = float(magnitude.mean())
    mean = ab.mean(axis=1)
    ratio = float(np.hypot(*mean) / chroma) if chroma > 0 else 0.0
    floor = float(np.percentile(magnitude, 10))
    return chroma, ratio, floor, math.degrees(math.atan2(mean[1], mean[0])) % 360


def summarise(stats: list[tuple[float, float, float, float]], cast: float) -> dict[str, Any]:
    arr = np.array(stats)
    casts = (arr[:, 1] > cast) & (arr[:, 2] > MIN_CHROMA)
    return {
        "photos": len(stats),
        "chroma": round(float(arr[:, 0].mean()), 2),
        "cast_ratio": round(float(arr[:, 1].mean()), 3),
        "floor": round(float(arr[:, 2].mean()), 2),
        "cast_photos": int(casts.sum()),
        "cast_hues": [round(h) for h in arr[casts, 3]],
    }


def _photos(args: argparse.Namespace) -> list[np.ndarray]:
    from model.checkset import check_set
    from model.photos import read_images
    from model.training.data import IMAGE_SUFFIXES

    if args.check_set:
        return [rgb for _, rgb in check_set(args.check_set, args.max_side)]
    paths = sorted(p for p in Path(args.photos).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return list(read_images(paths, args.max_side))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("models", nargs="+", metavar="NAME=WEIGHTS")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--photos", help="folder of photos (black-and-white or colour)")
    source.add_argument("--check-set", help="a check set (natural): also reports its ground truth")
    parser.add_argument("--max-side", type=int, default=384)
    parser.add_argument("--cast", type=float, default=0.8, help="cast ratio above which a photo is cast")
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from benchmarks.models import load_models
    from model.color import srgb8_to_lightness
    from model.imageio import DecodedImage

    photos = _photos(args)
    rows: dict[str, dict[str, Any]] = {}
    if args.check_set:
        rows["ground truth"] = summarise([cast_stats(rgb) for rgb in photos], args.cast)
    for name, colorizer in load_models(args.models).items():
        stats = []
        for rgb in photos:
            out = colorizer.colorize_batch([DecodedImage(lightness=srgb8_to_lightness(rgb), mode="RGB")])[0]
            stats.append(cast_stats(out.rgb))
        rows[name] = summarise(stats, args.cast)
    rule = f"ratio > {args.cast:g}, floor > {MIN_CHROMA:g}"
    print(f"| | photos | chroma | cast ratio | floor | cast photos ({rule}) | their hues (°) |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, r in rows.items():
        hues = ", ".join(str(h) for h in r["cast_hues"]) or "-"
        print(
            f"| {name} | {r['photos']} | {r['chroma']:.2f} | {r['cast_ratio']:.3f} | {r['floor']:.2f} | "
            f"{r['cast_photos']} | {hues} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
