"""Cost of recombining predicted a*b* with L* (:mod:`model.compose`: chroma upsampling from the working size,
Lab -> sRGB with the gamut fit that keeps L*), per image, for 1024x768 and a 25-megapixel scan: the fused CPU
kernel, the batched tensor code on the CPU (what a GPU runs; the fallback without numba) and, where there is
one, the GPU.

Chroma: random a*b* in [-40, 40] on the working-size grid (an untrained network's colours: many pixels need
the gamut fit) and the shipped checkpoint's prediction for a photo that scikit-image ships.

    python -m benchmarks.compose [--runs 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from model import Colorizer
from model.compose import ChromaGrid, compose, compose_batch

SIZES = {"1024x768": (768, 1024), "5774x4330 (25 MP)": (4330, 5774)}


def _ms(fn: Callable[[], object], runs: int, cuda: bool = False) -> float:
    fn()
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(runs):
        fn()
    if cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / runs * 1e3


def _cases(colorizer: Colorizer, height: int, width: int) -> dict[str, tuple[np.ndarray, np.ndarray, ChromaGrid]]:
    from skimage import data

    photo = Image.fromarray(data.astronaut()).convert("L").resize((width, height))
    lightness = colorizer.decode(photo).lightness
    pred = colorizer.predict_chroma([lightness])[0]
    rng = np.random.default_rng(0)
    random_ab = rng.uniform(-40, 40, pred.ab.shape).astype(np.float32)
    return {
        "random a*b*": (lightness, random_ab, pred.grid),
        "shipped model, astronaut": (lightness, pred.ab.astype(np.float32), pred.grid),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--upsample", default="guided", choices=["guided", "bilinear"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    colorizer = Colorizer.from_pretrained()
    print(f"working size {colorizer.config.working_size}, upsample {args.upsample}, {args.threads} thread(s)\n")
    print("| image | chroma | fused CPU kernel ms | tensor code, CPU ms | GPU ms |\n|---|---|---:|---:|---:|")
    for size_name, (height, width) in SIZES.items():
        for name, (lum, ab, grid) in _cases(colorizer, height, width).items():
            kernel = _ms(lambda: compose(lum, ab, grid, args.upsample), args.runs)  # noqa: B023
            lum_t, ab_t = torch.from_numpy(lum), torch.from_numpy(ab)
            tensors = _ms(lambda: compose_batch([lum_t], [ab_t], [grid], args.upsample), 1)  # noqa: B023
            gpu = "-"
            if torch.cuda.is_available():
                lum_c, ab_c = lum_t.cuda(), ab_t.cuda()
                gpu = f"{_ms(lambda: compose_batch([lum_c], [ab_c], [grid], args.upsample), args.runs, True):.1f}"  # noqa: B023
            print(f"| {size_name} | {name} | {kernel:.1f} | {tensors:.1f} | {gpu} |")


if __name__ == "__main__":
    main()
