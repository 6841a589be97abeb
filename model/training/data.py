"""Training and evaluation data: a folder tree or a CSV manifest of colour photos.

* A **manifest** is a CSV with the columns ``path`` (relative to the CSV's folder), ``split`` and ``label``
  (empty = unlabelled), optionally ``source`` (evaluation reports one row per source); others are ignored.
* A **folder** is searched recursively for images. When it has ``train/`` or ``val/`` sub-folders those are the
  splits, otherwise every image is in every split. An image's label is the name of the folder directly below
  the split (or the root); images lying directly in the split (or the root) are unlabelled. That folder is
  also the image's source (evaluation reports one row per source).

Images are decoded with PIL in the DataLoader workers (random crops and flips for training); the Lab conversion
happens on the training device through :mod:`model.color` (:func:`lab_batch`).
"""

from __future__ import annotations

import csv
import hashlib
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset

from model.color import normalize_ab, normalize_lightness, rgb_to_lab
from model.photos import open_rgb

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
SPLIT_DIRS = ("train", "val", "test")
UNLABELLED = -1


@dataclass(frozen=True)
class Sample:
    path: Path
    split: str  # "train" | "val" | ... ; "*" = every split (a folder without split sub-folders)
    label: str  # "" = unlabelled
    source: str = ""  # where the photo comes from (manifest column ``source``, or a folder's first sub-folder)


@dataclass(frozen=True)
class DataSource:
    """Every sample of a manifest or folder, with a hash that identifies exactly this data."""

    root: Path
    samples: tuple[Sample, ...]
    digest: str  # sha256 of the manifest bytes, or of the folder's sorted relative paths and sizes
    kind: str  # "manifest" | "folder"

    def split(self, name: str | None) -> list[Sample]:
        """Samples of one split (``None``: all). A folder without split sub-folders serves every split."""
        if name is None:
            return list(self.samples)
        return [s for s in self.samples if s.split in (name, "*")]

    def class_names(self) -> tuple[str, ...]:
        """Labels in order of first appearance (deterministic for a given manifest or folder)."""
        return tuple(dict.fromkeys(s.label for s in self.samples if s.label))


def load_source(location: str | Path) -> DataSource:
    """Read a CSV manifest, a folder holding ``manifest.csv``, or a folder tree of images."""
    location = Path(location)
    if location.is_dir() and (location / "manifest.csv").is_file():
        location = location / "manifest.csv"
    if location.is_file():
        return _read_manifest(location)
    if location.is_dir():
        return _scan_folder(location)
    raise FileNotFoundError(f"no such manifest or folder: {location}")


def _read_manifest(path: Path) -> DataSource:
    raw = path.read_bytes()
    rows = csv.DictReader(raw.decode("utf-8").splitlines())
    if rows.fieldnames is None or "path" not in rows.fieldnames:
        raise ValueError(f"{path}: a manifest needs a 'path' column (and optionally 'split', 'label')")
    root = path.parent
    samples = tuple(
        Sample(
            root / row["path"],
            (row.get("split") or "*").strip(),
            (row.get("label") or "").strip(),
            (row.get("source") or "").strip(),
        )
        for row in rows
    )
    if not samples:
        raise ValueError(f"{path}: the manifest lists no images")
    return DataSource(root, samples, hashlib.sha256(raw).hexdigest(), "manifest")


def _scan_folder(root: Path) -> DataSource:
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ValueError(f"{root}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found")
    has_splits = any((root / s).is_dir() for s in SPLIT_DIRS)
    digest = hashlib.sha256()
    samples = []
    for path in files:
        rel = path.relative_to(root)
        digest.update(f"{rel.as_posix()}\t{path.stat().st_size}\n".encode())
        parts = rel.parts[:-1]
        split = "*"
        if has_splits and parts and parts[0] in SPLIT_DIRS:
            split, parts = parts[0], parts[1:]
        elif has_splits:
            continue  # images outside the split folders belong to no split
        samples.append(Sample(path, split, parts[0] if parts else "", parts[0] if parts else ""))
    return DataSource(root, tuple(samples), digest.hexdigest(), "folder")


def source_weights(samples: Sequence[Sample], exponent: float) -> list[float]:
    """Sampling weight of each photo: ``n ** (exponent - 1)`` where ``n`` counts the photos of its source, so
    each source is drawn in proportion to ``n ** exponent`` (1: every photo alike; 0: every source alike). An
    empty source is a source of its own."""
    counts: dict[str, int] = {}
    for s in samples:
        counts[s.source] = counts.get(s.source, 0) + 1
    return [counts[s.source] ** (exponent - 1.0) for s in samples]


def chroma_weights(samples: Sequence[Sample], exponent: float, side: int = 64) -> list[float]:
    """Sampling weight of each photo: ``(its mean chroma + 1) ** exponent`` (mean |a*b*| of the photo made at
    most ``side`` pixels on its longer side), so the more colourful photos are drawn more often; an unreadable
    photo gets the median weight (the dataset replaces it when drawn)."""
    from model.color import srgb8_to_ab

    chroma: list[float | None] = []
    for sample in samples:
        try:
            image = open_rgb(sample.path)
        except (OSError, UnidentifiedImageError, ValueError):
            chroma.append(None)
            continue
        image.thumbnail((side, side), Image.Resampling.BILINEAR)
        chroma.append(float(np.hypot(*srgb8_to_ab(np.asarray(image), torch.float32)).mean()))
    known = [c for c in chroma if c is not None]
    fallback = float(np.median(known)) if known else 0.0
    return [((fallback if c is None else c) + 1.0) ** exponent for c in chroma]


def random_crop(image: Image.Image, size: int, rng: random.Random, min_scale: float = 0.5) -> Image.Image:
    """A random square crop covering ``min_scale``..1 of the shorter side, resized to ``size``, flipped half
    the time."""
    w, h = image.size
    side = max(1, int(round(min(w, h) * rng.uniform(min_scale, 1.0))))
    x, y = rng.randint(0, w - side), rng.randint(0, h - side)
    crop = image.resize((size, size), Image.Resampling.BILINEAR, box=(x, y, x + side, y + side), reducing_gap=2.0)
    return crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else crop


def center_square(image: Image.Image, size: int) -> Image.Image:
    """The central square, resized to ``size`` (deterministic; for statistics and the teacher)."""
    w, h = image.size
    side = min(w, h)
    x, y = (w - side) // 2, (h - side) // 2
    return image.resize((size, size), Image.Resampling.BILINEAR, box=(x, y, x + side, y + side), reducing_gap=2.0)


class PhotoDataset(Dataset):
    """``(rgb uint8 (3, S, S), label index or -1, sample index)`` per photo.

    ``augment``: random crops and flips (training); otherwise the central square. An unreadable photo is
    logged and replaced by another one, so a single bad file never stops a run.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        size: int,
        class_names: Sequence[str] = (),
        *,
        augment: bool = True,
    ) -> None:
        if not samples:
            raise ValueError("no samples to load")
        self.samples = list(samples)
        self.size = size
        self.index = {name: i for i, name in enumerate(class_names)}
        self.augment = augment

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Tensor, int, int]:
        rng = random.Random()  # fresh entropy per item: workers must not repeat each other's crops
        for attempt in range(10):
            j = i if attempt == 0 else rng.randrange(len(self.samples))
            sample = self.samples[j]
            try:
                image = open_rgb(sample.path)
            except (OSError, UnidentifiedImageError, ValueError) as exc:
                log.warning("skipping unreadable image %s: %s", sample.path, exc)
                continue
            out = random_crop(image, self.size, rng) if self.augment else center_square(image, self.size)
            rgb = torch.from_numpy(np.asarray(out, dtype=np.uint8).copy()).permute(2, 0, 1)
            return rgb, self.index.get(sample.label, UNLABELLED), j
        raise OSError(f"ten unreadable images in a row near {self.samples[i].path}")


def lab_batch(rgb: Tensor, device: torch.device) -> tuple[Tensor, Tensor]:
    """uint8 sRGB ``(B, 3, S, S)`` -> network input L*/100 ``(B, 1, S, S)`` and the normalised a*b* target at
    the network's output resolution ``(B, 2, S/2, S/2)`` (area-averaged), both float32 on ``device``."""
    lab = rgb_to_lab(rgb.to(device, non_blocking=True).float() / 255.0)
    lightness = normalize_lightness(lab[:, :1])
    ab = F.avg_pool2d(lab[:, 1:], 2)
    return lightness, normalize_ab(ab)
