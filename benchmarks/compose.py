"""Cost of recombining predicted a*b* with L* (``model.compose.compose_lab``: upsampling, Lab -> sRGB with the
gamut fit that keeps L*), per 1024x768 image, on the CPU (one thread) and, where there is one, on the GPU.

Two kinds of chroma: random a*b* in [-40, 40] (an untrained network's colours: many pixels need the gamut
fit) and the shipped checkpoint's prediction for a photo that scikit-image ships (trained colours).

    python -m benchmarks.compose [--runs 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image

from model import Colorizer
from model.compose import compose_lab


def _ms(lightness: np.ndarray, ab: np.ndarray, device: torch.device | None, runs: int) -> float:
    for _ in range(3):
        compose_lab(lightness, ab, device=device)
    if device is not None:
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(runs):
        compose_lab(lightness, ab, device=device)
    return (time.perf_counter() - start) / runs * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from skimage import data

    photo = Image.fromarray(data.astronaut()).convert("L").resize((1024, 768))
    colorizer = Colorizer.from_pretrained()
    lightness = colorizer.decode(photo).lightness
    rng = np.random.default_rng(0)
    cases = {
        "random a*b* in [-40, 40]": rng.uniform(-40, 40, (2, 384, 512)).astype(np.float32),
        "shipped model, astronaut": colorizer.predict_chroma([lightness])[0].ab.astype(np.float32),
    }
    devices: list[torch.device | None] = [None]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    print("| chroma | device | ms per 1024x768 image |\n|---|---|---:|")
    for name, ab in cases.items():
        for device in devices:
            print(f"| {name} | {device or 'cpu, 1 thread'} | {_ms(lightness, ab, device, args.runs):.1f} |")


if __name__ == "__main__":
    main()
