"""The pipeline's stages. CPU work is plain functions over ``dict[str, np.ndarray]`` batches; inference is a
callable class that loads the predictor once per actor.

Rows carry a ``status`` from the first stage on: ``todo`` rows are colorized, while ``skipped`` and ``failed``
rows travel through untouched so that every object ends up in the report. Between stages only L* (float16),
a*b* (float16, half resolution), alpha and EXIF travel through the object store, never full-resolution RGB:
the last stage recombines and encodes. Images are stored as raw bytes columns (``height``/``width`` give the
shapes), which Arrow holds without conversion.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from model import Colorizer, ImageLimits, ImageTooLargeError, decode_image, encode_image
from model.compose import compose_lab
from model.config import STRIDE
from pipelines.archive.keys import VIDEO, output_key
from pipelines.archive.report import COLUMNS
from pipelines.archive.storage import Store

log = logging.getLogger(__name__)

Batch = dict[str, np.ndarray]

# Columns the decode stage adds for the inference and encode stages (dropped before the report).
_PIXEL_COLUMNS = ("lightness", "alpha", "exif", "format", "ab", "rgb")


@dataclass(frozen=True)
class StageContext:
    """What the CPU stages need; pickled once per stage and shipped to the workers."""

    src: Store
    dst: Store
    format: str = "same"
    quality: int = 92
    overwrite: bool = False
    limits: ImageLimits = field(default_factory=ImageLimits)
    upsample: str = "bilinear"
    io_threads: int = 16


def failure(exc: BaseException) -> str:
    """The report's reason for an exception: its class name (``model.errors`` names), then the message."""
    return f"{type(exc).__name__}: {exc}"


def _empty_row(key: str, size: int) -> dict[str, Any]:
    row: dict[str, Any] = {c: "" for c in COLUMNS}
    row.update(key=key, status="todo", bytes_in=max(size, 0), bytes_out=0, width=0, height=0)
    row.update({t: 0.0 for t in ("fetch_ms", "decode_ms", "infer_ms", "encode_ms", "upload_ms")})
    row.update(lightness=b"", alpha=b"", exif=b"", format="", ab=b"", rgb=b"")
    return row


def _columns(rows: Sequence[dict[str, Any]], names: Sequence[str]) -> Batch:
    out: Batch = {}
    for name in names:
        values = [r[name] for r in rows]
        if name in {"bytes_in", "bytes_out", "width", "height"}:
            out[name] = np.asarray(values, dtype=np.int64)
        elif name.endswith("_ms"):
            out[name] = np.asarray(values, dtype=np.float64)
        else:
            column = np.empty(len(values), dtype=object)
            column[:] = values
            out[name] = column
    return out


def _rows(batch: Batch) -> list[dict[str, Any]]:
    n = len(batch["key"])
    return [{name: column[i] for name, column in batch.items()} for i in range(n)]


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1e3


# ----------------------------------------------------------------------------- stage 1: fetch + decode
def _fetch(ctx: StageContext, key: str, size: int, defer_videos: bool) -> tuple[dict[str, Any], bytes | None]:
    """Resume check and download for one object (runs in a thread: I/O only). Videos are only checked for an
    existing output (their worker downloads them to a file); with ``defer_videos`` they are just marked."""
    row = _empty_row(key, size)
    out, fmt = output_key(key, ctx.format)
    row.update(output=out, format=fmt)
    if fmt == VIDEO and defer_videos:
        row["status"] = "video"  # left to the video pass, which reports it
        return row, None
    try:
        if not ctx.overwrite:
            existing = ctx.dst.size(out)
            if existing is not None:
                row.update(status="skipped", reason="output exists", bytes_out=existing)
                return row, None
        if fmt == VIDEO:
            return row, None
        if size > ctx.limits.max_bytes:
            raise ImageTooLargeError(f"object is {size:,} bytes; the limit is {ctx.limits.max_bytes:,}")
        start = time.perf_counter()
        data = ctx.src.get(key)
        row.update(fetch_ms=_ms(start), bytes_in=len(data))
        return row, data
    except Exception as exc:  # one object's failure never fails the job
        row.update(status="failed", reason=failure(exc), output="")
        return row, None


def fetch_and_decode(batch: Batch, ctx: StageContext) -> Batch:
    """Download a batch of objects with ``io_threads`` threads, then decode each to L* in this task."""
    keys, sizes = batch["key"], batch["size"]
    with ThreadPoolExecutor(max_workers=max(1, min(ctx.io_threads, len(keys)))) as pool:
        fetched = list(pool.map(lambda ks: _fetch(ctx, ks[0], int(ks[1]), True), zip(keys, sizes, strict=True)))
    rows = []
    for row, data in fetched:
        if data is not None:
            start = time.perf_counter()
            try:
                image = decode_image(data, ctx.limits)
            except Exception as exc:  # corrupt, not an image, too large, unsupported mode
                row.update(status="failed", reason=failure(exc), output="")
            else:
                h, w = image.lightness.shape
                row.update(
                    width=w,
                    height=h,
                    lightness=image.lightness.astype(np.float16).tobytes(),
                    alpha=b"" if image.alpha is None else image.alpha.tobytes(),
                    exif=image.exif or b"",
                )
            row["decode_ms"] = _ms(start)
        rows.append(row)
    return _columns(rows, (*COLUMNS, *_PIXEL_COLUMNS))


# ---------------------------------------------------------------------------------- stage 2: inference
def half_shape(height: int, width: int) -> tuple[int, int, int]:
    """Shape of the predicted a*b* for an image of this size."""
    return 2, (height + (-height % STRIDE)) // 2, (width + (-width % STRIDE)) // 2


class ChromaWorker:
    """Inference actor: loads the predictor once, then predicts a*b* for the batch's ``todo`` rows (and, with
    ``compose`` on the device, recombines them with L* there so that only 8-bit RGB comes back)."""

    def __init__(
        self,
        factory: Callable[[], Colorizer],
        torch_threads: int | None = None,
        compose: str = "cpu",
        upsample: str = "bilinear",
    ) -> None:
        import torch

        if torch_threads:
            torch.set_num_threads(torch_threads)
        self.colorizer = factory()
        device = self.colorizer.device
        self.compose_device = device if compose == "device" or (compose == "auto" and device.type != "cpu") else None
        self.upsample = upsample
        log.info("inference worker ready: %s; compose on %s", self.colorizer.info(), self.compose_device or "CPUs")

    def _predict(self, planes: list[np.ndarray]) -> list[Any]:
        """Predict a batch; if it fails, retry image by image so that only the culprit fails."""
        try:
            return list(self.colorizer.predict_chroma(planes))
        except Exception:
            if len(planes) == 1:
                raise
        results: list[Any] = []
        for plane in planes:
            try:
                results.append(self.colorizer.predict_chroma([plane])[0])
            except Exception as exc:
                results.append(exc)
        return results

    def __call__(self, batch: Batch) -> Batch:
        out = dict(batch)
        status, reason = batch["status"].copy(), batch["reason"].copy()
        ab, labels, infer_ms = batch["ab"].copy(), batch["labels"].copy(), batch["infer_ms"].copy()
        rgb = batch["rgb"].copy()
        todo = np.flatnonzero(status == "todo")
        if len(todo):
            planes = [
                np.frombuffer(batch["lightness"][i], np.float16)
                .reshape(int(batch["height"][i]), int(batch["width"][i]))
                .astype(np.float32)
                for i in todo
            ]
            start = time.perf_counter()
            try:
                predictions = self._predict(planes)
            except Exception as exc:
                predictions = [exc] * len(planes)
            share = _ms(start) / len(todo)
            lightness = batch["lightness"].copy()
            for j, (i, pred) in enumerate(zip(todo, predictions, strict=True)):
                infer_ms[i] = share
                if isinstance(pred, BaseException):
                    status[i], reason[i] = "failed", failure(pred)
                    continue
                labels[i] = ";".join(f"{name}:{p:.3f}" for name, p in pred.labels)
                if self.compose_device is None:
                    ab[i] = np.ascontiguousarray(pred.ab, dtype=np.float16).tobytes()
                    continue
                start = time.perf_counter()
                try:
                    rgb[i] = compose_lab(planes[j], pred.ab, self.upsample, self.compose_device).tobytes()
                    lightness[i] = b""  # the encode stage needs only the 8-bit image now
                except Exception as exc:
                    status[i], reason[i] = "failed", failure(exc)
                infer_ms[i] += _ms(start)
            out["lightness"] = lightness
        out.update(status=status, reason=reason, ab=ab, rgb=rgb, labels=labels, infer_ms=infer_ms)
        return out


# ---------------------------------------------------------------------- stage 3: compose + encode + upload
def _put(ctx: StageContext, row: dict[str, Any], data: bytes) -> None:
    start = time.perf_counter()
    try:
        ctx.dst.put(row["output"], data)
    except Exception as exc:
        row.update(status="failed", reason=failure(exc), output="", bytes_out=0)
    else:
        row.update(status="ok", bytes_out=len(data))
    row["upload_ms"] = _ms(start)


def compose_encode_upload(batch: Batch, ctx: StageContext) -> Batch:
    """Recombine each image's own L* with its predicted a*b*, encode with its EXIF, and upload while the
    next one encodes. Returns report rows only."""
    rows = _rows(batch)
    with ThreadPoolExecutor(max_workers=max(1, min(ctx.io_threads, len(rows)))) as pool:
        uploads = []
        for row in rows:
            if row["status"] != "todo":
                continue
            start = time.perf_counter()
            try:
                h, w = int(row["height"]), int(row["width"])
                alpha = np.frombuffer(row["alpha"], np.uint8).reshape(h, w) if len(row["alpha"]) else None
                if len(row["rgb"]):  # composed in the inference actor, on its device
                    rgb = np.frombuffer(row["rgb"], np.uint8).reshape(h, w, 3)
                else:
                    lightness = np.frombuffer(row["lightness"], np.float16).reshape(h, w).astype(np.float32)
                    ab = np.frombuffer(row["ab"], np.float16).reshape(half_shape(h, w))
                    rgb = compose_lab(lightness, ab, ctx.upsample)
                data = encode_image(
                    rgb, alpha=alpha, format=row["format"], quality=ctx.quality, exif=bytes(row["exif"]) or None
                )
            except Exception as exc:
                row.update(status="failed", reason=failure(exc), output="")
                continue
            finally:
                row["encode_ms"] = _ms(start)
            uploads.append(pool.submit(_put, ctx, row, data))
        for upload in uploads:
            upload.result()
    for row in rows:
        if row["status"] == "todo":  # cannot happen; never report an object as neither done nor failed
            row.update(status="failed", reason="InternalError: object left unprocessed")
    return _columns(rows, COLUMNS)


# ------------------------------------------------------------------------------------ video objects
class VideoWorker:
    """Colorizes whole video objects, one at a time: download to a temporary file, ``colorize_video``,
    upload. Uses the predictor like :class:`ChromaWorker`; needs :mod:`pipelines.video`."""

    def __init__(self, factory: Callable[[], Colorizer], ctx: StageContext, torch_threads: int | None = None) -> None:
        import torch

        if torch_threads:
            torch.set_num_threads(torch_threads)
        self.ctx = ctx
        self.colorizer = factory()

    def __call__(self, batch: Batch) -> Batch:
        rows = []
        for key, size in zip(batch["key"], batch["size"], strict=True):
            row, _ = _fetch(self.ctx, str(key), int(size), False)
            if row["status"] == "todo":
                self._colorize(row)
            rows.append(row)
        return _columns(rows, COLUMNS)

    def _colorize(self, row: dict[str, Any]) -> None:
        import tempfile
        from pathlib import Path, PurePosixPath

        suffix = PurePosixPath(row["key"]).suffix
        try:
            from pipelines.video import VideoOptions, colorize_video
        except ImportError as exc:
            row.update(status="failed", output="", reason=f"UnsupportedVideoError: video support missing ({exc})")
            return
        with tempfile.TemporaryDirectory(prefix="colorize-video-") as tmp:
            src, dst = Path(tmp) / f"in{suffix}", Path(tmp) / f"out{suffix}"
            try:
                start = time.perf_counter()
                self.ctx.src.download(row["key"], src)
                row.update(fetch_ms=_ms(start), bytes_in=src.stat().st_size)
                start = time.perf_counter()
                summary = colorize_video(src, dst, self.colorizer, VideoOptions())
                row["infer_ms"] = _ms(start)
                start = time.perf_counter()
                self.ctx.dst.upload(dst, row["output"])
                row.update(upload_ms=_ms(start), bytes_out=dst.stat().st_size, status="ok")
                row["detail"] = json.dumps(summary, default=str, sort_keys=True)
                row["width"] = int(summary.get("width") or 0) if isinstance(summary, dict) else 0
                row["height"] = int(summary.get("height") or 0) if isinstance(summary, dict) else 0
            except Exception as exc:  # ColorizeError subclasses (InvalidVideoError, ...) and storage errors
                row.update(status="failed", reason=failure(exc), output="")


__all__ = [
    "ChromaWorker",
    "StageContext",
    "VideoWorker",
    "compose_encode_upload",
    "fetch_and_decode",
    "half_shape",
]
