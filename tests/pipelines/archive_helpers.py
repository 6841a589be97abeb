"""Shared pieces of the archive tests: an S3 API on loopback (moto), a nested test archive with good and bad
objects, and checks that an output really is its input colorized."""

from __future__ import annotations

import dataclasses
import io
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from model import ImageLimits, ModelSpec, PredictorConfig, decode_image
from pipelines.archive import ArchiveConfig, Outputs, Resources, Selection, StorageOptions, open_store
from tests import imagegen

MAX_BYTES = 300_000  # the archive tests' object size limit (one object is over it)


def _names(cls: Any) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def archive_config(src: str, dst: str, **flat: Any) -> ArchiveConfig:
    """Tests only: an ArchiveConfig from flat keywords (``quality=95, workers=(1, 1), preset="test",
    max_bytes=...``), each sorted into its group; library code writes the groups itself."""
    groups: dict[str, dict[str, Any]] = {"selection": {}, "outputs": {}, "resources": {}, "predictor": {}}
    limits, model, top = {}, {}, {}
    for key, value in flat.items():
        if key in ("storage", "selection", "outputs", "resources", "model"):
            top[key] = value
        elif key in ("weights", "preset"):
            model[key] = value
        elif key in _names(ImageLimits):
            limits[key] = value
        else:
            group = next((g for g, cls in _GROUPS.items() if key in _names(cls)), None)
            if group is None:
                raise TypeError(f"archive_config: no group has a field {key!r}")
            groups[group][key] = value
    if limits:
        groups["predictor"]["limits"] = ImageLimits(**limits)
    return ArchiveConfig(
        src,
        dst,
        selection=Selection(**groups["selection"]),
        outputs=Outputs(**groups["outputs"]),
        resources=Resources(**groups["resources"]),
        model=ModelSpec(**model, predictor=PredictorConfig(**groups["predictor"])),
        **top,
    )


_GROUPS = {"selection": Selection, "outputs": Outputs, "resources": Resources, "predictor": PredictorConfig}


@dataclass(frozen=True)
class MotoS3:
    endpoint_url: str
    options: StorageOptions

    def bucket(self, name: str) -> str:
        """Create bucket ``name`` and return its URL."""
        open_store(f"s3://{name}", self.options).client.create_bucket(Bucket=name)  # type: ignore[attr-defined]
        return f"s3://{name}"


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[MotoS3]:
    """A moto S3 server on a free loopback port for the module; explicit test credentials travel to workers."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    options = StorageOptions(
        endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    yield MotoS3(endpoint, options)
    server.stop()


def _noise_png(width: int, height: int, seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return imagegen.encode(Image.fromarray(pixels, "RGB"), "PNG")


def build_archive() -> tuple[dict[str, bytes], dict[str, str]]:
    """(valid objects, bad objects -> expected error class): 44 images and 9 bad objects in nested folders."""
    valid: dict[str, bytes] = {}
    for i in range(20):
        folder = ("letters/1921", "letters/1922/march", "portraits")[i % 3]
        valid[f"{folder}/grey-{i:02d}.jpg"] = imagegen.grey_jpeg(48 + 9 * i, 40 + 7 * (i % 5), seed=i)
    for i in range(8):
        valid[f"postcards/sepia/card-{i}.jpg"] = imagegen.sepia_jpeg(96 + 8 * i, 64 + 4 * i, seed=100 + i)
    for i in range(4):
        valid[f"scans/transparent/rgba-{i}.png"] = imagegen.rgba_png(40 + 10 * i, 30 + 6 * i, seed=200 + i)
    for i in range(3):
        valid[f"scans/palette-{i}.png"] = imagegen.palette_png(50 + i, 44 + i, seed=300 + i)
    for i in range(4):
        valid[f"rotated/exif-{i}.jpg"] = imagegen.exif_rotated_jpeg(80 + 10 * i, 48 + 4 * i, seed=400 + i)
    valid["scans/deep/16bit-a.png"] = imagegen.sixteen_bit_png(40, 30, seed=500)
    valid["scans/deep/16bit-b.png"] = imagegen.sixteen_bit_png(33, 21, seed=501)
    valid["print/cmyk-a.jpg"] = imagegen.cmyk_jpeg(48, 40, seed=600)
    valid["print/cmyk-b.jpg"] = imagegen.cmyk_jpeg(40, 32, seed=601)
    valid["tiny/one-pixel.png"] = imagegen.one_pixel_png(77)
    bad = {
        "broken/truncated-1.jpg": "TruncatedImageError",
        "broken/truncated-2.jpg": "TruncatedImageError",
        "broken/empty.jpg": "EmptyImageError",
        "letters/1922/empty.png": "EmptyImageError",
        "notes/readme.txt": "NotAnImageError",
        "notes/index.jpg": "NotAnImageError",  # text with an image extension
        "broken/bomb.png": "ImageTooLargeError",
        "scans/huge.png": "ImageTooLargeError",  # over MAX_BYTES: failed without downloading
        "scans/float.tif": "UnsupportedImageError",
    }
    return valid, bad


def bad_bytes(key: str) -> bytes:
    if "truncated" in key:
        return imagegen.truncated_jpeg()
    if "empty" in key:
        return b""
    if key.startswith("notes/"):
        return imagegen.NOT_AN_IMAGE
    if "bomb" in key:
        return imagegen.bomb_png()
    if "huge" in key:
        data = _noise_png(400, 400, seed=7)
        assert len(data) > MAX_BYTES
        return data
    if "float" in key:
        return imagegen.float_tiff()
    raise KeyError(key)


def all_objects() -> tuple[dict[str, bytes], dict[str, str]]:
    """Every object's bytes, and the expected error class of the bad ones."""
    valid, bad = build_archive()
    return {**valid, **{k: bad_bytes(k) for k in bad}}, bad


def assert_colorized(source: bytes, output: bytes) -> None:
    """Same display size as the input, its L* kept (mean |dL*| < 1), upright, alpha kept."""
    before, after = decode_image(source), decode_image(output)
    assert after.size == before.size
    assert np.abs(after.lightness - before.lightness).mean() < 1.0
    assert (after.alpha is None) == (before.alpha is None)
    if before.alpha is not None:
        assert after.alpha is not None and np.array_equal(after.alpha, before.alpha)
    with Image.open(io.BytesIO(output)) as image:
        assert image.getexif().get(imagegen.EXIF_ORIENTATION, 1) == 1


class _Throttled:
    """A predictor that is slow (``delay`` seconds per image) and, given a marker path that does not exist yet,
    kills its own process on the first call (a crashed worker). Everything else is the real predictor."""

    def __init__(self, inner: Any, delay: float, crash_marker: str | None) -> None:
        self.inner, self.delay, self.crash_marker = inner, delay, crash_marker

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def colorize_encoded(self, requests: Any) -> Any:
        if self.crash_marker is not None and not os.path.exists(self.crash_marker):
            Path(self.crash_marker).write_text("crashed once")
            os._exit(1)  # the actor process dies mid-batch, as on a segfault or an OOM kill
        time.sleep(self.delay * len(requests))
        return self.inner.colorize_encoded(requests)


@dataclass(frozen=True)
class TinyPredictor:
    """Picklable factory of the smallest network, optionally slowed down or crashing once (see _Throttled)."""

    delay: float = 0.0
    crash_marker: str | None = None

    def __call__(self) -> Any:
        from model import Colorizer, PredictorConfig

        inner = Colorizer.from_pretrained(preset="test", config=PredictorConfig(device="cpu"))
        if not self.delay and self.crash_marker is None:
            return inner
        return _Throttled(inner, self.delay, self.crash_marker)
