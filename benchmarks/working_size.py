"""Quality and cost of the working size (the longest side the network sees; chroma is brought back to full size
guided by the full-resolution L*) against full-resolution inference, to choose ``PredictorConfig.working_size``.

Sets: scikit-image's natural colour photos (astronaut, chelsea, coffee, rocket; whole, at their own 400-640 px),
the same photos enlarged 2.5x (1000-1600 px: what a network trained on small crops sees when a scan is large),
and scikit-image's colour images of 872-1411 px (hubble_deep_field, retina); optionally a folder of your own
colour photos (``--data``, e.g. photos of 768 px or more). Val split photos of the training pack are 128 px:
every working size >= 128 leaves them unchanged.

    python -m benchmarks.working_size [--sizes 128,256,384,512,768,full] [--upsample guided] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from model import Colorizer, PredictorConfig
from model.color import srgb8_to_lightness
from model.metrics import colorfulness, psnr
from model.photos import read_images

RESULTS = Path(__file__).resolve().parent / "results"


def photo_sets(data: Path | None) -> dict[str, list[np.ndarray]]:
    from skimage import data as sk

    natural = [np.ascontiguousarray(getattr(sk, n)()[..., :3]) for n in ("astronaut", "chelsea", "coffee", "rocket")]
    enlarged = [
        np.asarray(Image.fromarray(p).resize((p.shape[1] * 5 // 2, p.shape[0] * 5 // 2), Image.Resampling.BICUBIC))
        for p in natural
    ]
    sets = {
        "natural, 400-640 px": natural,
        "natural enlarged 2.5x, 1000-1600 px": enlarged,
        "hubble + retina, 1000-1411 px": [sk.hubble_deep_field()[..., :3], sk.retina()[..., :3]],
    }
    if data is not None:
        sets[f"{data.name}, own size"] = list(read_images(sorted(p for p in data.iterdir() if p.is_file()), None))
    return sets


def measure(colorizer: Colorizer, photos: Iterable[np.ndarray]) -> dict[str, float]:
    psnrs, cfs, truths, seconds = [], [], [], []
    for truth in photos:
        lightness = srgb8_to_lightness(truth)
        start = time.perf_counter()
        (pred,) = colorizer.predict_chroma([lightness])
        rgb = colorizer.compose(lightness, pred)
        seconds.append(time.perf_counter() - start)
        psnrs.append(psnr(truth, rgb))
        cfs.append(colorfulness(rgb))
        truths.append(colorfulness(truth))
    return {
        "psnr": statistics.mean(psnrs),
        "colourfulness": statistics.mean(cfs),
        "truth colourfulness": statistics.mean(truths),
        "ms per image": statistics.mean(seconds) * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="128,256,384,512,768,full")
    parser.add_argument("--upsample", default=PredictorConfig.upsample, choices=["guided", "bilinear"])
    parser.add_argument("--weights")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", type=Path, help="a folder of colour photos to add as a set")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes: list[int | None] = [None if s == "full" else int(s) for s in args.sizes.split(",")]
    results: dict[str, Any] = {}
    for name, photos in photo_sets(args.data).items():
        rows = {}
        for size in sizes:
            config = PredictorConfig(device="cpu", working_size=size, upsample=args.upsample)
            colorizer = Colorizer.from_pretrained(args.weights, config=config)
            rows[str(size or "full")] = measure(colorizer, photos)
        full = rows["full"]
        for row in rows.values():
            row["dpsnr vs full"] = row["psnr"] - full["psnr"]
            row["colourfulness vs full %"] = 100 * (row["colourfulness"] / full["colourfulness"] - 1)
        results[name] = rows
        print(f"\n{name} ({len(photos)} photos), upsample {args.upsample}")
        print("| working size | PSNR | dPSNR vs full | colourfulness | vs full | ms/image |")
        print("|---|---:|---:|---:|---:|---:|")
        for size, r in rows.items():
            print(
                f"| {size} | {r['psnr']:.2f} | {r['dpsnr vs full']:+.2f} | {r['colourfulness']:.1f} "
                f"| {r['colourfulness vs full %']:+.1f}% | {r['ms per image']:.0f} |",
                flush=True,
            )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"working_size-{args.upsample}.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
