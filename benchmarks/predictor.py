"""Predictor throughput per image size, split into decode, model, compose (chroma upsample + Lab->sRGB) and
encode. Synthetic greyscale JPEGs; prints a markdown table.

    python -m benchmarks.predictor [--preset tiny|small|paper] [--weights W] [--device cpu|cuda] [--n 16]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from typing import Any

import numpy as np
import torch
from PIL import Image

from model import Colorizer, PredictorConfig, decode_image
from model.imageio import encode_image

SIZES = [(256, 256), (512, 512), (1024, 768)]


def synthetic_jpegs(width: int, height: int, n: int) -> list[bytes]:
    import io

    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        y, x = np.mgrid[0:height, 0:width].astype(np.float32)
        img = 128 + 80 * np.sin(x / (17 + i) + i) * np.cos(y / 23) + rng.normal(0, 8, (height, width))
        buf = io.BytesIO()
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "L").save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    colorizer = Colorizer.from_pretrained(
        args.weights,
        preset=args.preset,
        config=PredictorConfig(device=args.device, max_batch_size=args.batch),
    )
    rows = []
    for width, height in SIZES:
        data = synthetic_jpegs(width, height, args.n)
        colorizer.predict_chroma([decode_image(data[0]).lightness])  # warm-up
        t0 = time.perf_counter()
        decoded = [decode_image(d) for d in data]
        t1 = time.perf_counter()
        chroma = colorizer.predict_chroma([d.lightness for d in decoded])
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        rgbs = [colorizer.compose(d.lightness, c) for d, c in zip(decoded, chroma, strict=True)]
        t3 = time.perf_counter()
        for rgb in rgbs:
            encode_image(rgb, format="JPEG", quality=90)
        t4 = time.perf_counter()
        t_decode, t_model, t_compose, t_encode = t1 - t0, t2 - t1, t3 - t2, t4 - t3
        total = t_decode + t_model + t_compose + t_encode
        rows.append(
            {
                "size": f"{width}x{height}",
                "images/s": args.n / total,
                "model images/s": args.n / t_model,
                "decode %": 100 * t_decode / total,
                "model %": 100 * t_model / total,
                "compose %": 100 * t_compose / total,
                "encode %": 100 * t_encode / total,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", help="untrained preset instead of the shipped checkpoint")
    parser.add_argument("--weights")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n", type=int, default=16, help="images per size")
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    colorizer_name = args.weights or (args.preset and f"{args.preset} (untrained)") or "shipped default"
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, threads "
        f"{torch.get_num_threads()}, device {args.device}; model: {colorizer_name}; "
        f"n={args.n}, batch={args.batch}"
    )
    rows = run(args)
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(v if isinstance(v, str) else f"{v:.1f}" for v in row.values()) + " |")


if __name__ == "__main__":
    main()
