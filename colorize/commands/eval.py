"""``colorize eval --data DIR|MANIFEST``: colour quality of a model against greyscale and mean-a*b* baselines."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from colorize.options import add_model_options, load_colorizer


def register(sub: Any) -> None:
    p = sub.add_parser("eval", help="measure colour quality (PSNR, SSIM, colourfulness, AuC) against baselines")
    p.add_argument("--data", required=True, help="CSV manifest (path, split, label) or a folder of colour photos")
    p.add_argument("--split", default="val", help="manifest split or split folder to evaluate (default: val)")
    p.add_argument("--max-side", type=int, default=256, help="downscale longer sides to this (default: 256)")
    p.add_argument("--limit", type=int, help="evaluate at most this many images")
    p.add_argument("--batch-size", type=int, default=32, help="images per forward pass (default: 32)")
    p.add_argument("--json", type=Path, help="also write the results as JSON here")
    add_model_options(p)
    p.set_defaults(func=run)


def mean_ab_for(colorizer: Any, source: Any, eval_paths: list[Path]) -> tuple[tuple[float, float], str]:
    """The training set's mean a*b* from the model card; else computed from the data's train split (or, when
    there is none, from the evaluated photos themselves)."""
    from model.training.stats import compute_stats

    stored = colorizer.card.get("mean_ab")
    if stored:
        return (float(stored[0]), float(stored[1])), "model card"
    train = [s for s in source.samples if s.split == "train"]
    origin = "train split"
    if not train:
        train = [s for s in source.samples if s.path in set(eval_paths)]
        origin = "evaluated photos"
    stats = compute_stats(train, 128, progress=False)
    return stats.mean_ab, origin


def run(args: argparse.Namespace) -> int:
    from model.evaluation import evaluate, format_table, read_images
    from model.training.data import load_source

    try:
        source = load_source(args.data)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    paths = [s.path for s in source.split(args.split)][: args.limit]
    if not paths:
        print(f"error: {args.data}: no images in split {args.split!r}", file=sys.stderr)
        return 2
    colorizer = load_colorizer(args, max_batch_size=args.batch_size)
    mean_ab, origin = mean_ab_for(colorizer, source, paths)
    skipped: list[str] = []
    report = evaluate(colorizer, read_images(paths, args.max_side, skipped), mean_ab, batch_size=args.batch_size)
    for line in skipped:
        print(f"skipped {line}", file=sys.stderr)
    title = (
        f"{colorizer.model_name} on {args.data} [{args.split}], {len(paths) - len(skipped)} images, "
        f"max side {args.max_side}; mean a*b* ({mean_ab[0]:.2f}, {mean_ab[1]:.2f}) from the {origin}"
    )
    print(format_table(report, title=title))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0
