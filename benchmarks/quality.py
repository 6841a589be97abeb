"""Colour quality of several checkpoints on the same photos, in one table with the two baselines.

    python -m benchmarks.quality --data PACK/manifest.csv --split val --check-set natural --time \\
        fusion=runs/fusion/model.safetensors prior=runs/prior/model.safetensors ...

Every model sees the same photos in the same run; the greyscale and mean-a*b* baselines are computed once
(mean a*b* from the first checkpoint's card, i.e. the training set's). Greyscale ground truths are skipped and
counted. ``--check-set natural`` adds the same table on photos outside the pack (scikit-image's colour
samples), and per-source tables follow each. ``--time``: CPU milliseconds per image of each model (one photo
per call, the check set's or the data's photos, after a warm-up), the inference-cost column. Prints Markdown;
``--json`` writes ``{"data": {...report}, "natural": {...report}, "ms_per_image": {...}}``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("models", nargs="+", metavar="NAME=WEIGHTS", help="checkpoints to compare")
    parser.add_argument("--data", help="CSV manifest or folder of colour photos")
    parser.add_argument("--split", default="val")
    parser.add_argument("--check-set", help="also evaluate on a check set outside the data (natural)")
    parser.add_argument("--max-side", type=int, default=256)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--time", action="store_true", help="measure CPU ms per image for each model")
    parser.add_argument("--repeats", type=int, default=2, help="with --time: passes over the photos (default: 2)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if not args.data and not args.check_set:
        parser.error("give --data, --check-set or both")
    return args


def ms_per_image(colorizers: dict[str, Any], photos: list[np.ndarray], repeats: int = 2) -> dict[str, float]:
    """Median wall milliseconds of one ``colorize_batch`` call on one photo (decoded L* in, RGB out), per model.

    The models take turns on every photo, so a machine that slows down or speeds up during the run moves all of
    them alike and their ratios hold."""
    from model.color import srgb8_to_lightness
    from model.imageio import DecodedImage

    planes = [DecodedImage(lightness=srgb8_to_lightness(rgb), mode="RGB") for rgb in photos]
    times: dict[str, list[float]] = {name: [] for name in colorizers}
    for colorizer in colorizers.values():
        colorizer.colorize_batch(planes[:1])  # warm-up
    for _ in range(repeats):
        for plane in planes:
            for name, colorizer in colorizers.items():
                start = time.perf_counter()
                colorizer.colorize_batch([plane])
                times[name].append(time.perf_counter() - start)
    return {name: round(1000 * float(np.median(t)), 2) for name, t in times.items()}


def _table(colorizers: dict[str, Any], report: dict[str, Any], title: str) -> str:
    from model.evaluation import markdown_sources, markdown_table
    from model.network import count_parameters

    results = report["results"]
    rows = {
        f"{name} ({c.family}/{c.card.get('preset', '?')}, {count_parameters(c.network) / 1e6:.2f}M)": results[name]
        for name, c in colorizers.items()
    }
    rows["greyscale (a\\*b\\* = 0)"] = results["greyscale"]
    rows["mean a\\*b\\* of the training set"] = results["mean_ab"]
    lines = [
        f"{title}: {report['images']} photos ({report['skipped_greyscale']} with a greyscale ground truth skipped)",
        "",
        markdown_table(rows, results["ground_truth"]["colorfulness"]),
    ]
    for name in colorizers:
        if len(report.get("sources") or {}) >= 2:
            lines += ["", f"Per source, {name}:", "", markdown_sources(report, name)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from benchmarks.models import load_models
    from model.checkset import check_set
    from model.evaluation import evaluate_report
    from model.photos import read_samples
    from model.training.data import load_source

    colorizers = load_models(args.models)
    mean_ab = tuple(next(iter(colorizers.values())).card["mean_ab"])
    sets: dict[str, list[Any]] = {}
    if args.data:
        samples = load_source(args.data).split(args.split)[: args.limit]
        sets["data"] = list(read_samples(samples, args.max_side))
    if args.check_set:
        sets[args.check_set] = check_set(args.check_set, args.max_side)
    out: dict[str, Any] = {}
    for key, photos in sets.items():
        start = time.perf_counter()
        out[key] = evaluate_report(colorizers, photos, mean_ab)
        title = f"{args.split} split of {args.data}" if key == "data" else f"check set {key!r}"
        print(_table(colorizers, out[key], title) + f"\n\n(evaluated in {time.perf_counter() - start:.0f} s)\n")
    if args.time:
        photos = [rgb for _, rgb in next(reversed(sets.values()))]
        out["ms_per_image"] = ms_per_image(colorizers, photos, args.repeats)
        print(f"CPU ms per image ({torch.get_num_threads()} threads): {out['ms_per_image']}")
    for name, c in colorizers.items():
        recipe = c.card.get("recipe", {})
        print(
            f"- {name}: {recipe.get('steps')} steps, {recipe.get('images_seen')} images, "
            f"{c.card.get('time', {}).get('train_minutes')} min on {c.card.get('hardware')}; loss: {recipe.get('loss')}"
        )
    print(f"\n({platform.machine()}, torch {torch.__version__}, mean a*b* {mean_ab})")
    if args.json:
        args.json.write_text(json.dumps({**out, "mean_ab": list(mean_ab), "max_side": args.max_side}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
