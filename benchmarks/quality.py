"""Colour quality of several checkpoints on the same photos, in one table with the two baselines.

    python -m benchmarks.quality --data PACK/manifest.csv --split val \\
        fusion=runs/fusion/model.safetensors regression=runs/regression/model.safetensors ...

Every model sees the same photos in the same run; the greyscale and mean-a*b* baselines are computed once
(mean a*b* from the first checkpoint's card, i.e. the training set's). Prints a Markdown table; ``--json``
writes ``{"results": {name: {...}, "greyscale": {...}, "mean_ab": {...}, "ground_truth": {...}}, ...}``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", metavar="NAME=WEIGHTS", help="checkpoints to compare")
    parser.add_argument("--data", required=True, help="CSV manifest or folder of colour photos")
    parser.add_argument("--split", default="val")
    parser.add_argument("--max-side", type=int, default=256)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from model import Colorizer, PredictorConfig
    from model.evaluation import evaluate_models, markdown_table, read_images
    from model.network import count_parameters
    from model.training.data import load_source

    colorizers = {}
    for spec in args.models:
        name, _, path = spec.partition("=")
        colorizers[name] = Colorizer.from_pretrained(path, config=PredictorConfig(device="cpu"))
    first = next(iter(colorizers.values()))
    mean_ab = tuple(first.card["mean_ab"])
    source = load_source(args.data)
    paths = [s.path for s in source.split(args.split)][: args.limit]
    images = list(read_images(paths, args.max_side))
    start = time.perf_counter()
    results = evaluate_models(colorizers, images, mean_ab)
    seconds = time.perf_counter() - start

    rows = {
        f"{name} ({c.family}/{c.card.get('preset', '?')}, {count_parameters(c.network) / 1e6:.2f}M)": results[name]
        for name, c in colorizers.items()
    }
    rows["greyscale (a\\*b\\* = 0)"] = results["greyscale"]
    rows["mean a\\*b\\* of the training set"] = results["mean_ab"]
    print(f"{args.split} split of {args.data}: {len(images)} photos, max side {args.max_side}")
    print(markdown_table(rows, results["ground_truth"]["colorfulness"]))
    print()
    for name, c in colorizers.items():
        recipe = c.card.get("recipe", {})
        print(
            f"- {name}: {recipe.get('steps')} steps, {recipe.get('images_seen')} images, "
            f"{c.card.get('time', {}).get('train_minutes')} min on {c.card.get('hardware')}; loss: {recipe.get('loss')}"
        )
    print(f"\n(evaluated in {seconds:.0f} s on {platform.machine()}, torch {torch.__version__})")
    if args.json:
        meta = {"split": args.split, "images": len(images), "max_side": args.max_side, "mean_ab": list(mean_ab)}
        args.json.write_text(json.dumps({"results": results, **meta}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
