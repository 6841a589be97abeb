"""``colorize train --data DIR|MANIFEST --out DIR``: train a model family within a time budget, resumably."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("train", help="train a colorization model (fusion or a comparison baseline)")
    p.add_argument("--data", required=True, help="CSV manifest (path, split, label) or a folder of photos")
    p.add_argument("--out", required=True, type=Path, help="output folder (checkpoints, log)")
    p.add_argument("--family", help="fusion | prior | regression | classification (default: fusion)")
    p.add_argument("--preset", help="the family's preset: paper | small | tiny | test (default: tiny)")
    p.add_argument("--minutes", type=float, help="training-time budget, resumes included (default: 15)")
    p.add_argument("--max-steps", type=int, help="stop after this many optimiser steps")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument("--batch-size", type=int, help="images per step (default: 32)")
    p.add_argument("--size", type=int, help="side of the square training crops (default: 128)")
    p.add_argument("--lr", type=float, help="peak learning rate (default: 1e-3)")
    p.add_argument("--warmup-steps", type=int, help="linear learning-rate warm-up steps (default: 100)")
    p.add_argument("--init-from", help="warm start: a checkpoint (e.g. a fusion one for --family prior)")
    p.add_argument("--tone-jitter", type=float, help="share of inputs given a random tone curve (default: 0)")
    p.add_argument(
        "--source-exponent",
        type=float,
        help="draw each source in proportion to (its photos) ** E: 1 every photo alike (default), 0 every source",
    )
    p.add_argument(
        "--chroma-exponent",
        type=float,
        help="also draw each photo in proportion to (its mean chroma + 1) ** E, vivid photos more often (default: 0)",
    )
    p.add_argument("--confidence", type=float, help="add a confidence head of this strength (default: none)")
    p.add_argument(
        "--distribution", type=float, help="add an a*b* distribution head blended in this strongly (default: none)"
    )
    p.add_argument(
        "--rebalance-lambda", type=float, help="class rebalancing of the a*b* bins' cross-entropy (default: 0.5)"
    )
    p.add_argument("--train-only", help="train only the parameters under this prefix, e.g. colorization.confidence")
    p.add_argument(
        "--prior-train-blocks",
        type=int,
        help="prior family: fine-tune the backbone's last N of 16 blocks and its head (default: 0, frozen)",
    )
    p.add_argument(
        "--pretrained-from",
        help="prior family: take the ImageNet backbone from this prior checkpoint instead of its pip package",
    )
    p.add_argument("--prior-lr-scale", type=float, help="the fine-tuned backbone's learning rate x (default: 0.1)")
    p.add_argument("--teacher", action="store_true", help="add EfficientNet-Lite0 soft labels (fusion)")
    p.add_argument("--teacher-size", type=int, help="side of the photos the teacher sees (default: 224)")
    p.add_argument("--max-train-images", type=int, help="train on a random subset of this many photos")
    p.add_argument("--chroma-weight", type=float, help="fusion and prior: weight of the chroma-deficit penalty")
    p.add_argument("--split", help="split to train on (default: train)")
    p.add_argument(
        "--calibrate-images", type=int, help="training photos choosing the chroma gain (default: 500; 0: none)"
    )
    p.add_argument("--max-psnr-drop", type=float, help="PSNR (dB) the chroma gain may cost (default: 0.5)")
    p.add_argument("--eval-split", help="split evaluated at the end; 'none' to skip (default: val)")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--workers", type=int, help="data-loading processes (default: 2)")
    p.add_argument("--seed", type=int, help="random seed (default: 0)")
    p.add_argument("--name", help="model name in the card")
    p.add_argument("--data-name", help="how the model card names the training data")
    p.add_argument("--cache", dest="cache_dir", help="folder caching data statistics and teacher labels")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (log files)")
    p.set_defaults(func=run)


_FIELDS = (
    "family",
    "preset",
    "minutes",
    "max_steps",
    "batch_size",
    "size",
    "lr",
    "warmup_steps",
    "split",
    "device",
    "threads",
    "workers",
    "seed",
    "name",
    "data_name",
    "cache_dir",
    "teacher_size",
    "max_train_images",
    "calibrate_images",
    "max_psnr_drop",
    "init_from",
    "tone_jitter",
    "source_exponent",
    "chroma_exponent",
    "confidence",
    "distribution",
    "train_only",
    "prior_train_blocks",
    "prior_lr_scale",
    "pretrained_from",
)


def config_from_args(args: argparse.Namespace) -> Any:
    from model.training import LossOptions, TrainConfig
    from model.training.loop import STATE_FILE
    from model.training.state import load_state

    values: dict[str, Any] = {}
    loss: dict[str, Any] = {}
    if args.resume and (args.out / STATE_FILE).is_file():
        # Options not given again come from the run being resumed.
        values = load_state(args.out / STATE_FILE).meta["train_config"]
        loss = dict(values.pop("loss", {}))
    values.update({"data": args.data, "out": str(args.out), "resume": args.resume})
    values.update({k: getattr(args, k) for k in _FIELDS if getattr(args, k) is not None})
    if args.teacher:
        values["teacher"] = True
    if args.chroma_weight is not None:
        loss["chroma_weight"] = args.chroma_weight
    if args.rebalance_lambda is not None:
        loss["rebalance_lambda"] = args.rebalance_lambda
    if args.eval_split is not None:
        values["eval_split"] = None if args.eval_split.lower() == "none" else args.eval_split
    if args.no_progress:
        values["progress"] = False
    return TrainConfig.from_dict({**values, "loss": LossOptions(**loss).__dict__})


def run(args: argparse.Namespace) -> int:
    from model.evaluation import format_table
    from model.training import train

    try:
        cfg = config_from_args(args)
        result = train(cfg)
    except (ValueError, FileNotFoundError) as exc:  # our own errors: colorize.cli, by their exit_code
        print(f"error: {exc}", file=sys.stderr)
        return 2
    p = result.progress
    print(f"trained {cfg.family}/{cfg.preset}: {p.step} steps, {p.images:,} images, {p.seconds / 60:.1f} min")
    print(f"checkpoint: {result.checkpoint}")
    if "chroma_gain" in result.card:
        print(f"chroma gain: {result.card['chroma_gain']:.2f} (calibrated on the {cfg.split} split)")
    evaluation = result.card.get("eval")
    if evaluation:
        print(format_table(evaluation, title=f"{evaluation['split']} split, {evaluation['images']} images"))
    if args.verbose:
        print(json.dumps(result.card, indent=2))
    return 0
