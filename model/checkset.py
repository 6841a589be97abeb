"""Check sets outside the training pack: natural colour photos that a pip package ships, so anyone can rerun
the same evaluation without the data pack, and so a model that only fits the pack's look shows it.

``natural``: scikit-image's colour photographs (astronaut, chelsea the cat, coffee, rocket), each whole and as
four quadrants and a central crop, deterministic, 24 photos. Their source in the report is the photo's name,
so a cast on one kind of scene (skin, fur, food, sky) is visible on its own row. (``skimage.data.cat`` is the
same picture as ``chelsea`` and is not counted twice.)

``calibration``: three other colour photographs, kept apart from ``natural`` so that a setting chosen on one
is judged on the other: scikit-learn's ``china`` (a temple among trees) and ``flower``, and matplotlib's
``grace_hopper`` (a portrait), each whole, as quadrants and a central crop, 18 photos (``colorize calibrate
--check-set calibration`` chooses a chroma gain on photos outside any training pack). Needs the ``quality``
extra (scikit-learn and matplotlib, for their sample images only).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

from model.photos import fit_max_side

NATURAL_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


def crops(rgb: np.ndarray) -> list[np.ndarray]:
    """The whole photo, its four quadrants and its central half (deterministic)."""
    h, w = rgb.shape[:2]
    hh, hw = h // 2, w // 2
    return [
        rgb,
        rgb[:hh, :hw],
        rgb[:hh, hw:],
        rgb[hh:, :hw],
        rgb[hh:, hw:],
        rgb[h // 4 : h // 4 + hh, w // 4 : w // 4 + hw],
    ]


def natural_photos(max_side: int | None = 256) -> list[tuple[str, np.ndarray]]:
    """``(name, rgb)`` for every photo of the ``natural`` check set, longer sides at most ``max_side``."""
    from skimage import data

    out = []
    for name in NATURAL_PHOTOS:
        rgb = np.ascontiguousarray(getattr(data, name)()[..., :3])
        for crop in crops(rgb):
            out.append((name, fit_max_side(Image.fromarray(np.ascontiguousarray(crop)), max_side)))
    return out


CALIBRATION_PHOTOS = (
    ("china", "sklearn.datasets.images", "china.jpg"),
    ("flower", "sklearn.datasets.images", "flower.jpg"),
    ("grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
)


def calibration_photos(max_side: int | None = 256) -> list[tuple[str, np.ndarray]]:
    """``(name, rgb)`` for every photo of the ``calibration`` check set (see the module docstring)."""
    from importlib import resources

    out = []
    for name, package, resource in CALIBRATION_PHOTOS:
        try:
            path = resources.files(package).joinpath(resource)
        except ModuleNotFoundError:
            raise ValueError(f"the calibration set needs {package.split('.')[0]} (pip install '.[quality]')") from None
        with path.open("rb") as f, Image.open(f) as image:
            rgb = np.asarray(image.convert("RGB"))
        for crop in crops(rgb):
            out.append((name, fit_max_side(Image.fromarray(np.ascontiguousarray(crop)), max_side)))
    return out


CHECK_SETS: dict[str, Callable[[int | None], list[tuple[str, np.ndarray]]]] = {
    "natural": natural_photos,
    "calibration": calibration_photos,
}


def check_set(name: str, max_side: int | None = 256) -> list[tuple[str, np.ndarray]]:
    """The photos of a named check set (fails loudly on unknown names)."""
    try:
        build = CHECK_SETS[name]
    except KeyError:
        raise ValueError(f"unknown check set {name!r}; choose from {sorted(CHECK_SETS)}") from None
    return build(max_side)
