"""A tiny `colorize train` run on the CPU, for tests: a folder of generated photos and the common arguments."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from tests.imagegen import colour_photo


def photo_folder(root: Path, count: int = 6) -> Path:
    """``root/train/<i>.png``: ``count`` generated colour photos (40×40), no labels; returns ``root``."""
    train = root / "train"
    train.mkdir(parents=True)
    for i in range(count):
        Image.fromarray(colour_photo(40, 40, seed=i)).save(train / f"{i}.png")
    return root


def train_args(data: Path, out: Path, *extra: str) -> list[str]:
    """``colorize train`` arguments for a seconds-long CPU run of the ``test`` preset; ``extra`` come last."""
    args = ["train", "--data", str(data), "--out", str(out), "--preset", "test", "--size", "32"]
    return [*args, "--batch-size", "4", "--workers", "0", "--device", "cpu", "--no-progress", *extra]
