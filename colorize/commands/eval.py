"""``colorize eval --data DIR|MANIFEST [--check-set natural]``: colour quality of a model against greyscale and
mean-a*b* baselines, overall and per source, on the data and/or a check set outside it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from colorize.options import add_model_options, load_colorizer


def register(sub: Any) -> None:
    from model.checkset import CHECK_SETS

    p = sub.add_parser("eval", help="measure colour quality (PSNR, SSIM, colourfulness, AuC) against baselines")
    p.add_argument("--data", help="CSV manifest (path, split, label[, source]) or a folder of colour photos")
    p.add_argument(
        "--check-set",
        choices=sorted(CHECK_SETS),
        help="also (or only) evaluate on photos a pip package ships: natural = scikit-image's colour samples",
    )
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


def _eval_data(args: argparse.Namespace, colorizer: Any) -> tuple[dict[str, Any], str] | int:
    """The report on ``--data`` and its table's title, or an exit status when the data is unusable."""
    from model.evaluation import evaluate
    from model.photos import read_samples
    from model.training.data import load_source

    try:
        source = load_source(args.data)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    samples = source.split(args.split)[: args.limit]
    if not samples:
        print(f"error: {args.data}: no images in split {args.split!r}", file=sys.stderr)
        return 2
    mean_ab, origin = mean_ab_for(colorizer, source, [s.path for s in samples])
    skipped: list[str] = []
    try:
        report = evaluate(colorizer, read_samples(samples, args.max_side, skipped), mean_ab, batch_size=args.batch_size)
    except ValueError as exc:  # e.g. every photo greyscale
        print(f"error: {args.data}: {exc}", file=sys.stderr)
        return 2
    for line in skipped:
        print(f"skipped {line}", file=sys.stderr)
    title = (
        f"{colorizer.model_name} on {args.data} [{args.split}], {report['images']} images, "
        f"max side {args.max_side}; mean a*b* ({mean_ab[0]:.2f}, {mean_ab[1]:.2f}) from the {origin}"
    )
    return report, title


def _eval_check_set(args: argparse.Namespace, colorizer: Any) -> tuple[dict[str, Any], str]:
    from model.checkset import check_set
    from model.evaluation import evaluate, mean_ab_of

    photos = check_set(args.check_set, args.max_side)[: args.limit]
    stored = colorizer.card.get("mean_ab")
    mean_ab = (float(stored[0]), float(stored[1])) if stored else mean_ab_of(photos)
    origin = "model card" if stored else "evaluated photos"
    report = evaluate(colorizer, photos, mean_ab, batch_size=args.batch_size)
    title = (
        f"{colorizer.model_name} on the {args.check_set!r} check set, {report['images']} images, max side "
        f"{args.max_side}; mean a*b* ({mean_ab[0]:.2f}, {mean_ab[1]:.2f}) from the {origin}"
    )
    return report, title


def run(args: argparse.Namespace) -> int:
    from model.evaluation import format_table

    if not args.data and not args.check_set:
        print("error: give --data, --check-set or both", file=sys.stderr)
        return 2
    colorizer = load_colorizer(args, max_batch_size=args.batch_size)
    report: dict[str, Any] = {}
    if args.data:
        outcome = _eval_data(args, colorizer)
        if isinstance(outcome, int):
            return outcome
        report, title = outcome
        print(format_table(report, title=title))
    if args.check_set:
        checked, title = _eval_check_set(args, colorizer)
        print(("\n" if report else "") + format_table(checked, title=title))
        report = {**report, "check_sets": {args.check_set: checked}} if report else checked
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0
