"""What a large scan costs against a 1-megapixel photo, end to end through the predictor's pixel path (JPEG bytes
in, JPEG bytes out: :meth:`model.Colorizer.colorize_encoded`), in one process, runs interleaved so both sizes see
the same background load. Also the split into decode, network, compose and encode.

The target: a 25-megapixel image (25x the pixels) costs at most 8x a 1-megapixel one; the working size keeps
the network's cost flat, so what grows is decoding, recombination and encoding.

    python -m benchmarks.scale [--threads 2] [--runs 5] [--working-size 512|full]
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from model import Colorizer, EncodeRequest, PredictorConfig, decode_image, encode_image

SIZES = {"1 MP (1155x866)": (1155, 866), "25 MP (5774x4330)": (5774, 4330)}
RESULTS = Path(__file__).resolve().parent / "results"


def scan(width: int, height: int) -> bytes:
    """A greyscale JPEG with the detail of a real scan at any size: scikit-image's camera photo, resized."""
    from skimage import data

    image = Image.fromarray(data.camera()).resize((width, height), Image.Resampling.BICUBIC)
    noise = np.random.default_rng(0).normal(0, 3, (height, width))
    pixels = np.clip(np.asarray(image, np.float32) + noise, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _stages(colorizer: Colorizer, data: bytes) -> dict[str, float]:
    t0 = time.perf_counter()
    decoded = decode_image(data)
    t1 = time.perf_counter()
    (pred,) = colorizer.predict_chroma([decoded.lightness])
    t2 = time.perf_counter()
    rgb = colorizer.compose(decoded.lightness, pred)
    t3 = time.perf_counter()
    encode_image(rgb, format="JPEG", quality=92)
    t4 = time.perf_counter()
    return {"decode": t1 - t0, "network": t2 - t1, "compose": t3 - t2, "encode": t4 - t3}


def measure(colorizer: Colorizer, inputs: dict[str, bytes], runs: int) -> dict[str, Any]:
    for data in inputs.values():  # warm-up (kernel compilation, allocator)
        colorizer.colorize_encoded([EncodeRequest(data)])
    totals: dict[str, list[float]] = {name: [] for name in inputs}
    stages: dict[str, list[dict[str, float]]] = {name: [] for name in inputs}
    for _ in range(runs):
        for name, data in inputs.items():
            start = time.perf_counter()
            (result,) = colorizer.colorize_encoded([EncodeRequest(data)])
            totals[name].append(time.perf_counter() - start)
            assert not isinstance(result, Exception), result
            stages[name].append(_stages(colorizer, data))
    out: dict[str, Any] = {}
    for name in inputs:
        split = {k: statistics.median(s[k] for s in stages[name]) for k in stages[name][0]}
        out[name] = {"seconds": statistics.median(totals[name]), **{f"{k}_s": v for k, v in split.items()}}
    small, large = (out[n]["seconds"] for n in inputs)
    out["ratio"] = large / small
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--working-size", default=str(PredictorConfig.working_size))
    parser.add_argument("--upsample", default=PredictorConfig.upsample, choices=["guided", "bilinear"])
    parser.add_argument("--weights")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    working = None if args.working_size == "full" else int(args.working_size)
    config = PredictorConfig(device="cpu", working_size=working, upsample=args.upsample)
    colorizer = Colorizer.from_pretrained(args.weights, config=config)
    inputs = {name: scan(*size) for name, size in SIZES.items()}
    result = measure(colorizer, inputs, args.runs)
    machine = f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
    print(f"{machine}; {colorizer.model_name}; working size {args.working_size}, upsample {args.upsample}\n")
    print("| image | end to end s | decode s | network s | compose s | encode s |\n|---|---:|---:|---:|---:|---:|")
    for name in inputs:
        r = result[name]
        print(
            f"| {name} | {r['seconds']:.3f} | {r['decode_s']:.3f} | {r['network_s']:.3f} | {r['compose_s']:.3f} "
            f"| {r['encode_s']:.3f} |"
        )
    print(f"\n25 MP / 1 MP end to end: {result['ratio']:.2f}x (target <= 8x)")
    RESULTS.mkdir(exist_ok=True)
    record = {"machine": machine, "args": vars(args), **result}
    name = f"scale-{args.working_size}-{args.threads}t.json"
    (RESULTS / name).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
