"""The per-object report, the closing summary and the progress bar.

Each run writes ``<report folder>/<run id>/part-NNNNN.jsonl`` (one JSON object per processed object, flushed
every few thousand rows or seconds, each part written atomically) and, when it ends, ``summary.json``. A run
lists every selected object: outputs that already exist appear as ``skipped``, so the report of a resumed run
covers the whole archive; :func:`load_report` merges all runs (a skipped row yields to the row of the run that
produced the output). The driver keeps counters only, never the rows, so its memory does not grow with the
archive.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipelines.archive.keys import is_video
from pipelines.archive.storage import StorageOptions, Store, open_store

# Columns of a report row, in order. Timings are milliseconds spent on the object in each stage.
COLUMNS = (
    "key",  # relative to SRC
    "output",  # relative to DST ("" when nothing was written)
    "status",  # ok | skipped | failed
    "reason",  # "ErrorClass: message" for failures, why for skips
    "bytes_in",
    "bytes_out",
    "width",
    "height",
    "fetch_ms",
    "colorize_ms",  # the object's share of its actor batch: decode, network, compose, encode (a film: all of it)
    "upload_ms",
    "labels",  # top scene labels "name:prob;..." (images)
    "detail",  # JSON summary of a video
)
TIMINGS = ("fetch_ms", "colorize_ms", "upload_ms")
STATUSES = ("ok", "skipped", "failed")


def new_run_id() -> str:
    """Sortable and unique: UTC time, then a random suffix."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def reason_class(reason: str) -> str:
    """``"InvalidImageError: not a recognised image format"`` -> ``"InvalidImageError"``."""
    return reason.split(":", 1)[0].strip() or "unknown"


@dataclass
class Summary:
    """Counts and rates of one run (or, for a dry run, of what a run would do)."""

    run_id: str = ""
    src: str = ""
    dst: str = ""
    report: str = ""  # where this run's report parts and summary.json are
    total: int = 0
    ok: int = 0
    skipped: int = 0
    failed: int = 0
    videos: int = 0  # of the above, video objects
    bytes_in: int = 0
    bytes_out: int = 0
    pixels: int = 0  # colorized pixels
    seconds: float = 0.0  # wall time from start to the last row
    first_row_seconds: float | None = None  # when the first rows came back (start-up: actors, model loading)
    first_ok: int = 0  # images colorized by then
    stage_seconds: dict[str, float] = field(default_factory=dict)  # summed per-object stage time
    failures: dict[str, int] = field(default_factory=dict)  # by error class
    retries: dict[str, int] = field(default_factory=dict)  # storage calls retried (transient errors), by operation
    interrupted: bool = False
    dry_run: bool = False
    would_skip: int = 0  # dry run: outputs that already exist
    would_fail: int = 0  # dry run: objects over max_bytes or empty, failed without reading

    @property
    def images_per_second(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    @property
    def steady_images_per_second(self) -> float:
        """Throughput once the first results arrived (start-up excluded)."""
        if self.first_row_seconds is None or self.seconds <= self.first_row_seconds:
            return 0.0
        return (self.ok - self.first_ok) / (self.seconds - self.first_row_seconds)

    def add(self, row: dict[str, Any]) -> None:
        status = row["status"]
        self.total += 1
        if status == "ok":
            self.ok += 1
            self.pixels += int(row.get("width") or 0) * int(row.get("height") or 0)
        elif status == "skipped":
            self.skipped += 1
        else:
            self.failed += 1
            name = reason_class(str(row.get("reason") or ""))
            self.failures[name] = self.failures.get(name, 0) + 1
        if is_video(str(row["key"])):
            self.videos += 1
        if status != "skipped":  # a skipped object is not read; its row still gives its size
            self.bytes_in += int(row.get("bytes_in") or 0)
        if status == "ok":
            self.bytes_out += int(row.get("bytes_out") or 0)
        for name in TIMINGS:
            self.stage_seconds[name] = self.stage_seconds.get(name, 0.0) + float(row.get(name) or 0.0) / 1e3

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["images_per_second"] = round(self.images_per_second, 3)
        data["steady_images_per_second"] = round(self.steady_images_per_second, 3)
        return data

    def format(self) -> str:
        if self.dry_run:
            return (
                f"dry run: {self.total:,} objects ({_size(self.bytes_in)}) under {self.src}, of which "
                f"{self.videos:,} videos; {self.would_skip:,} already have an output, {self.would_fail:,} "
                f"would fail unread (empty or over the size limit); "
                f"{self.total - self.would_skip - self.would_fail:,} to colorize"
            )
        lines = [
            f"{self.total:,} objects: {self.ok:,} colorized, {self.skipped:,} skipped (output exists), "
            f"{self.failed:,} failed" + ("  [INTERRUPTED: rerun to finish the rest]" if self.interrupted else ""),
            f"{_size(self.bytes_in)} read, {_size(self.bytes_out)} written in {self.seconds:.1f} s: "
            f"{self.images_per_second:.2f} images/s"
            + (
                f" ({self.steady_images_per_second:.2f}/s after {self.first_row_seconds:.1f} s of start-up)"
                if self.steady_images_per_second > 0
                else ""
            ),
        ]
        busy = {k: v for k, v in self.stage_seconds.items() if v > 0}
        if busy:
            lines.append("time per stage: " + ", ".join(f"{k[:-3]} {v:.1f} s" for k, v in busy.items()))
        for name, count in sorted(self.failures.items(), key=lambda kv: -kv[1]):
            lines.append(f"  failed {count:,} x {name}")
        if self.retries:
            retried = ", ".join(f"{op} {n:,}" for op, n in self.retries.items())
            lines.append(f"storage retries (throttling, 5xx, dropped connections): {retried}")
        lines.append(f"report: {self.report}")
        return "\n".join(lines)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


class ReportWriter:
    """Buffers rows and writes them as numbered JSONL parts; at most ``flush_rows`` rows are held."""

    def __init__(
        self, store: Store, prefix: str, run_id: str, flush_rows: int = 5000, flush_seconds: float = 30.0
    ) -> None:
        self.store, self.prefix, self.run_id = store, prefix, run_id
        self.flush_rows, self.flush_seconds = flush_rows, flush_seconds
        self._rows: list[str] = []
        self._parts = 0
        self._last = time.monotonic()

    @property
    def url(self) -> str:
        return self.store.location.url + self.prefix + self.run_id + "/"

    def add(self, row: dict[str, Any]) -> None:
        self._rows.append(json.dumps({c: row.get(c) for c in COLUMNS}, separators=(",", ":")))
        if len(self._rows) >= self.flush_rows or time.monotonic() - self._last > self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        if self._rows:
            data = ("\n".join(self._rows) + "\n").encode()
            self.store.put(f"{self.prefix}{self.run_id}/part-{self._parts:05d}.jsonl", data)
            self._parts += 1
            self._rows.clear()
        self._last = time.monotonic()

    def close(self, summary: Summary) -> None:
        self.flush()
        self.store.put(f"{self.prefix}{self.run_id}/summary.json", json.dumps(summary.to_dict(), indent=2).encode())


class ProgressBar:
    """A tqdm bar over objects with ok/skipped/failed counts (the total is unknown while listing streams)."""

    def __init__(self, enabled: bool, total: int | None = None) -> None:
        self._bar: Any = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="obj", file=sys.stderr, mininterval=0.5, dynamic_ncols=True)

    def update(self, summary: Summary, n: int) -> None:
        if self._bar is not None:
            self._bar.set_postfix(ok=summary.ok, skipped=summary.skipped, failed=summary.failed, refresh=False)
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def load_report(where: str, storage: StorageOptions | None = None, *, merge: bool = True) -> Any:
    """All report rows under a report folder as a pandas DataFrame (with a ``run`` column).

    ``merge=True`` keeps one row per key: the latest run's row, except that a ``skipped`` row gives way to the
    latest earlier row that says how the output was made. Meant for inspection and tests; for reports of
    millions of rows read the JSONL parts with Ray Data or any engine that reads JSON lines.
    """
    import pandas as pd

    store = open_store(where, storage)
    frames = []
    for obj in store.iter_objects():
        run, _, name = obj.key.partition("/")
        if name.startswith("part-") and name.endswith(".jsonl"):
            lines = store.get(obj.key).decode().splitlines()
            frame = pd.DataFrame([json.loads(line) for line in lines if line], columns=list(COLUMNS))
            frame["run"] = run
            frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=[*COLUMNS, "run"])
    rows = pd.concat(frames, ignore_index=True).sort_values("run", kind="stable")
    if not merge:
        return rows.reset_index(drop=True)
    rows["_informative"] = rows["status"] != "skipped"
    # Per key: prefer informative rows, then the latest run.
    rows = rows.sort_values(["key", "_informative", "run"], kind="stable")
    merged = rows.groupby("key", sort=True).tail(1).drop(columns="_informative")
    return merged.sort_values("key").reset_index(drop=True)


def load_summaries(where: str, storage: StorageOptions | None = None) -> list[dict[str, Any]]:
    """The summary.json of every finished run under a report folder, oldest first."""
    store = open_store(where, storage)
    found = [o.key for o in store.iter_objects() if o.key.endswith("/summary.json")]
    return [json.loads(store.get(k)) for k in sorted(found)]
