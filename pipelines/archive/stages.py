"""The pipeline's image stages. I/O is plain functions over ``dict[str, np.ndarray]`` batches; the pixel path is
a callable class that loads the predictor once per actor.

fetch (CPU tasks, threads: download only) -> colorize (actor pool: :meth:`model.Colorizer.colorize_encoded`,
bytes in and bytes out, decode -> network -> compose -> encode on the actor's device) -> upload (CPU tasks,
threads). Only encoded bytes travel through the object store, never pixel planes. Rows carry a ``status`` from
the first stage on: ``todo`` rows are colorized, while ``skipped`` and ``failed`` rows travel through untouched
so that every object ends up in the report.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from model import Colorizer, ImageLimits, ImageTooLargeError
from model.encoded import EncodeRequest
from pipelines.archive.keys import VIDEO, output_key
from pipelines.archive.report import COLUMNS, TIMINGS
from pipelines.archive.storage import Store

log = logging.getLogger(__name__)

Rows = dict[str, np.ndarray]  # a Ray Data batch: one column per report field (+ "data")

_DATA = "data"  # the object's bytes: the source after fetch, the colorized output after colorize


@dataclass(frozen=True)
class StageContext:
    """What the I/O stages need; pickled once per stage and shipped to the workers."""

    src: Store
    dst: Store
    format: str = "same"
    quality: int = 92
    overwrite: bool = False
    limits: ImageLimits = field(default_factory=ImageLimits)
    io_threads: int = 16


def failure(exc: BaseException) -> str:
    """The report's reason for an exception: its class name (``model.errors`` names), then the message."""
    return f"{type(exc).__name__}: {exc}"


def _empty_row(key: str, size: int) -> dict[str, Any]:
    row: dict[str, Any] = {c: "" for c in COLUMNS}
    row.update(key=key, status="todo", bytes_in=max(size, 0), bytes_out=0, width=0, height=0)
    row.update({t: 0.0 for t in TIMINGS})
    row.update(format="", data=b"")
    return row


def to_columns(rows: Sequence[dict[str, Any]], names: Sequence[str]) -> Rows:
    out: Rows = {}
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


def _rows(batch: Rows) -> list[dict[str, Any]]:
    n = len(batch["key"])
    return [{name: column[i] for name, column in batch.items()} for i in range(n)]


def elapsed_ms(start: float) -> float:
    return (time.perf_counter() - start) * 1e3


# ------------------------------------------------------------------------------------- stage 1: fetch
def fetch_one(ctx: StageContext, key: str, size: int, defer_videos: bool) -> dict[str, Any]:
    """Resume check and download for one object (runs in a thread: I/O only). Videos are only checked for an
    existing output (their worker downloads them to a file); with ``defer_videos`` they are just marked."""
    row = _empty_row(key, size)
    out, fmt = output_key(key, ctx.format)
    row.update(output=out, format=fmt)
    if fmt == VIDEO and defer_videos:
        row["status"] = "video"  # left to the video pass, which reports it
        return row
    try:
        if not ctx.overwrite:
            existing = ctx.dst.size(out)
            if existing is not None:
                row.update(status="skipped", reason="output exists", bytes_out=existing)
                return row
        if fmt == VIDEO:
            return row
        if size > ctx.limits.max_bytes:
            raise ImageTooLargeError(f"object is {size:,} bytes; the limit is {ctx.limits.max_bytes:,}")
        start = time.perf_counter()
        data = ctx.src.get(key)
        row.update(fetch_ms=elapsed_ms(start), bytes_in=len(data), data=data)
    except Exception as exc:  # one object's failure never fails the job
        row.update(status="failed", reason=failure(exc), output="")
    return row


def fetch(batch: Rows, ctx: StageContext) -> Rows:
    """Download a batch of objects with ``io_threads`` threads (objects already done are skipped unread)."""
    keys, sizes = batch["key"], batch["size"]
    with ThreadPoolExecutor(max_workers=max(1, min(ctx.io_threads, len(keys)))) as pool:
        rows = list(pool.map(lambda ks: fetch_one(ctx, ks[0], int(ks[1]), True), zip(keys, sizes, strict=True)))
    return to_columns(rows, (*COLUMNS, "format", _DATA))


# ---------------------------------------------------------------------------------- stage 2: colorize
class ColorizeWorker:
    """Actor: loads the predictor once, then runs the whole pixel path for the batch's ``todo`` rows (source
    bytes in, encoded output bytes out, on the predictor's device)."""

    def __init__(self, factory: Callable[[], Colorizer], quality: int = 92, torch_threads: int | None = None) -> None:
        import torch

        if torch_threads:
            torch.set_num_threads(torch_threads)
        self.colorizer = factory()
        self.quality = quality
        self.colorizer.warm_up()  # kernel compilation and device set-up before the first batch arrives
        log.info("colorize worker ready: %s", self.colorizer.info())

    def __call__(self, batch: Rows) -> Rows:
        out = dict(batch)
        status, reason, data = batch["status"].copy(), batch["reason"].copy(), batch[_DATA].copy()
        output = batch["output"].copy()
        labels, colorize_ms = batch["labels"].copy(), batch["colorize_ms"].copy()
        width, height = batch["width"].copy(), batch["height"].copy()
        todo = np.flatnonzero(status == "todo")
        if len(todo):
            requests = [EncodeRequest(bytes(data[i]), str(batch["format"][i]), self.quality) for i in todo]
            start = time.perf_counter()
            results = self.colorizer.colorize_encoded(requests)
            share = elapsed_ms(start) / len(todo)
            for i, result in zip(todo, results, strict=True):
                colorize_ms[i] = share
                if isinstance(result, BaseException):
                    status[i], reason[i], data[i], output[i] = "failed", failure(result), b"", ""
                    continue
                data[i], width[i], height[i] = result.data, result.width, result.height
                labels[i] = ";".join(f"{name}:{p:.3f}" for name, p in result.labels)
        out.update(status=status, reason=reason, output=output, labels=labels, colorize_ms=colorize_ms)
        out.update(width=width, height=height)
        out[_DATA] = data
        return out


# ------------------------------------------------------------------------------------ stage 3: upload
def _put(ctx: StageContext, row: dict[str, Any]) -> dict[str, Any]:
    if row["status"] != "todo":
        return row
    start = time.perf_counter()
    data = bytes(row[_DATA])
    try:
        ctx.dst.put(row["output"], data)
    except Exception as exc:
        row.update(status="failed", reason=failure(exc), output="", bytes_out=0)
    else:
        row.update(status="ok", bytes_out=len(data))
    row["upload_ms"] = elapsed_ms(start)
    return row


def upload(batch: Rows, ctx: StageContext) -> Rows:
    """Upload the colorized objects with ``io_threads`` threads. Returns report rows only."""
    rows = _rows(batch)
    with ThreadPoolExecutor(max_workers=max(1, min(ctx.io_threads, len(rows)))) as pool:
        rows = list(pool.map(lambda row: _put(ctx, row), rows))
    for row in rows:
        if row["status"] == "todo":  # cannot happen; never report an object as neither done nor failed
            row.update(status="failed", reason="InternalError: object left unprocessed")
    return to_columns(rows, COLUMNS)


__all__ = ["ColorizeWorker", "StageContext", "failure", "fetch", "upload"]
