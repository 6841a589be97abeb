"""The bulk job's video stage: whole video objects, one at a time, through :func:`pipelines.video.colorize_video`."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from model import Colorizer
from pipelines.archive.report import COLUMNS
from pipelines.archive.stages import Rows, StageContext, elapsed_ms, failure, fetch_one, to_columns


class VideoWorker:
    """Colorizes whole video objects, one at a time: download to a temporary file, ``colorize_video``,
    upload. Uses the predictor like :class:`ColorizeWorker`; needs :mod:`pipelines.video`."""

    def __init__(self, factory: Callable[[], Colorizer], ctx: StageContext, torch_threads: int | None = None) -> None:
        import torch

        if torch_threads:
            torch.set_num_threads(torch_threads)
        self.ctx = ctx
        self.colorizer = factory()

    def __call__(self, batch: Rows) -> Rows:
        rows = []
        for key, size in zip(batch["key"], batch["size"], strict=True):
            row = fetch_one(self.ctx, str(key), int(size), False)
            if row["status"] == "todo":
                self._colorize(row)
            rows.append(row)
        return to_columns(rows, COLUMNS)

    def _colorize(self, row: dict[str, Any]) -> None:
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
                row.update(fetch_ms=elapsed_ms(start), bytes_in=src.stat().st_size)
                start = time.perf_counter()
                summary = colorize_video(src, dst, self.colorizer, VideoOptions())
                row["colorize_ms"] = elapsed_ms(start)
                start = time.perf_counter()
                self.ctx.dst.upload(dst, row["output"])
                row.update(upload_ms=elapsed_ms(start), bytes_out=dst.stat().st_size, status="ok")
                row["detail"] = json.dumps(summary, default=str, sort_keys=True)
                row["width"] = int(summary.get("width") or 0) if isinstance(summary, dict) else 0
                row["height"] = int(summary.get("height") or 0) if isinstance(summary, dict) else 0
            except Exception as exc:  # ColorizeError subclasses (InvalidVideoError, ...) and storage errors
                row.update(status="failed", reason=failure(exc), output="")
