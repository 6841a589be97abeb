"""``colorize calibrate --data DIR|MANIFEST|--check-set NAME --weights W``: choose and store a checkpoint's
chroma gain (and optionally its neutral-floor share); with ``--fit-level``, fit its per-photo chroma level on
training photos instead (:mod:`model.chroma_level`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from colorize.options import neutral_share


def register(sub: Any) -> None:
    p = sub.add_parser(
        "calibrate", help="choose the a*b* gain (saturation) of a checkpoint on colour photos and store it"
    )
    photos = p.add_mutually_exclusive_group(required=True)
    photos.add_argument("--data", help="CSV manifest (path, split, label) or a folder of colour photos")
    photos.add_argument(
        "--check-set", help="calibrate on a check set instead: 'calibration' (photos outside any training pack)"
    )
    p.add_argument("--weights", required=True, help="checkpoint to calibrate (updated in place unless --out)")
    p.add_argument("--split", default="train", help="split to calibrate on; never the evaluation split")
    p.add_argument("--limit", type=int, help="random photos used (default: 500; 6000 with --fit-level)")
    p.add_argument(
        "--max-psnr-drop", type=float, default=0.5, help="PSNR (dB) the gain may cost against 1.0 (default: 0.5)"
    )
    p.add_argument(
        "--neutral", type=neutral_share, metavar="SHARE", help="also store this neutral-floor share (0 to 0.5)"
    )
    p.add_argument(
        "--fit-level",
        action="store_true",
        help="fit the per-photo chroma level (networks with a distribution head) on --data photos instead of the gain",
    )
    p.add_argument("--out", type=Path, help="write the calibrated checkpoint here instead")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from model.calibration import calibrate_checkpoint
    from model.training.data import load_source

    try:
        photos = [s.path for s in load_source(args.data).split(args.split)] if args.data else []
        if args.data and not photos:
            raise ValueError(f"{args.data}: no images in split {args.split!r}")
        if args.fit_level:
            return _fit_level(args, photos)
        result = calibrate_checkpoint(
            args.weights,
            photos,
            split=args.split,
            check_set=args.check_set,
            neutral=args.neutral,
            limit=500 if args.limit is None else args.limit,
            max_psnr_drop=args.max_psnr_drop,
            out=args.out,
            device=args.device,
        )
    except (ValueError, FileNotFoundError) as exc:  # our own errors: colorize.cli, by their exit_code
        print(f"error: {exc}", file=sys.stderr)
        return 2
    where = f"check set {args.check_set!r}" if args.check_set else f"split {args.split!r}"
    print(f"{'gain':>6} {'PSNR dB':>8} {'colourful':>10}")
    for row in result.rows:
        mark = "  <- chosen" if row["gain"] == result.gain else ""
        print(f"{row['gain']:>6.2f} {row['psnr']:>8.2f} {row['colorfulness']:>10.2f}{mark}")
    print(
        f"{result.images} photos of {where}, their colourfulness {result.truth_colorfulness:.2f}; "
        f"chroma gain {result.gain:.2f} stored in {args.out or args.weights}"
    )
    return 0


def _fit_level(args: argparse.Namespace, photos: list[Path]) -> int:
    from model.calibration import fit_level_checkpoint

    if not photos:
        raise ValueError("--fit-level fits on training photos: give --data (and --split), not --check-set")
    limit = 6000 if args.limit is None else args.limit
    fit = fit_level_checkpoint(
        args.weights, photos, split=args.split, limit=limit, neutral=args.neutral, out=args.out, device=args.device
    )
    print(
        f"chroma level fitted on {fit.images} photos of split {args.split!r}: "
        f"coefficients {fit.coef}, bias {fit.bias}; "
        f"R^2 {fit.r2:.3f}, mean factor {fit.mean_factor:.2f}; stored in {args.out or args.weights} "
        "(calibrate the chroma gain next)"
    )
    return 0
