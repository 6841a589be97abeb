"""Before / after / truth for the ``natural`` check set's whole photos, as one JPEG for the docs.

    python -m benchmarks.gallery --out docs/images/natural-gallery.jpg shipped=model/weights/default.safetensors

One row per photo that scikit-image ships (never the shared data packs): the greyscale input, each model's
colorization, and the original. Photos are scaled to ``--width`` pixels, so the columns line up.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

LABEL_HEIGHT = 18


def _row(images: list[np.ndarray], width: int) -> Image.Image:
    height = round(images[0].shape[0] * width / images[0].shape[1])
    row = Image.new("RGB", (len(images) * (width + 4) - 4, height), "white")
    for i, rgb in enumerate(images):
        row.paste(Image.fromarray(rgb).resize((width, height), Image.Resampling.LANCZOS), (i * (width + 4), 0))
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("models", nargs="+", metavar="NAME=WEIGHTS")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--width", type=int, default=200)
    args = parser.parse_args(argv)

    from skimage import data

    from benchmarks.models import load_models
    from model.checkset import NATURAL_PHOTOS
    from model.color import srgb8_to_lightness
    from model.evaluation import constant_ab
    from model.imageio import DecodedImage

    colorizers = load_models(args.models)
    rows = []
    for photo in NATURAL_PHOTOS:
        truth = np.ascontiguousarray(getattr(data, photo)()[..., :3])
        plane = srgb8_to_lightness(truth)
        outs = [c.colorize_batch([DecodedImage(lightness=plane, mode="RGB")])[0].rgb for c in colorizers.values()]
        rows.append(_row([constant_ab(plane, (0.0, 0.0)), *outs, truth], args.width))
    width = max(r.width for r in rows)
    sheet = Image.new("RGB", (width, LABEL_HEIGHT + sum(r.height + 4 for r in rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, label in enumerate(["greyscale input", *colorizers, "original"]):
        draw.text((i * (args.width + 4) + 4, 3), label, fill="black")
    y = LABEL_HEIGHT
    for row in rows:
        sheet.paste(row, (0, y))
        y += row.height + 4
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, quality=85, optimize=True)
    print(f"{args.out}: {sheet.width}x{sheet.height}, {args.out.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
