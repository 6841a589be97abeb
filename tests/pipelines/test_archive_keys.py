"""Selection and key mapping, configuration checks, the report and summary, and constant-memory listing."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from model import ImageLimits, ModelSpec, PredictorConfig
from pipelines.archive import (
    ArchiveConfig,
    KeyFilter,
    ObjectInfo,
    Resources,
    Summary,
    load_report,
    open_store,
    output_key,
)
from pipelines.archive.keys import KeyListing, pages, select
from pipelines.archive.report import ReportWriter
from tests.pipelines.archive_helpers import archive_config


@pytest.mark.parametrize(
    ("key", "option", "expected"),
    [
        ("a/b/photo.jpg", "same", ("a/b/photo.jpg", "JPEG")),
        ("a/b/photo.JPEG", "same", ("a/b/photo.JPEG", "JPEG")),
        ("scan.tif", "same", ("scan.tif", "TIFF")),
        ("scan.gif", "same", ("scan.png", "PNG")),  # no GIF encoder: PNG
        ("noext", "same", ("noext.png", "PNG")),
        ("a/photo.png", "jpeg", ("a/photo.jpg", "JPEG")),
        ("a/photo.jpg", "webp", ("a/photo.webp", "WEBP")),
        ("a/photo.jpeg", "jpeg", ("a/photo.jpeg", "JPEG")),
        ("films/reel.MP4", "png", ("films/reel.MP4", "VIDEO")),
    ],
)
def test_output_keys_mirror_the_source(key: str, option: str, expected: tuple[str, str]) -> None:
    assert output_key(key, option) == expected


def test_filters_limit_and_kinds() -> None:
    keys = ["a/1.jpg", "a/2.png", "a/skip/3.jpg", "b/4.jpg", "b/film.mov", "b/5.jpg", "c/6.txt"]
    objects = [ObjectInfo(k, 1) for k in keys]
    keep = KeyFilter(include=("a/*", "b/*"), exclude=("*/skip/*", "*.png"))
    assert [o.key for o in select(objects, keep)] == ["a/1.jpg", "b/4.jpg", "b/film.mov", "b/5.jpg"]
    assert [o.key for o in select(objects, keep, limit=3)] == ["a/1.jpg", "b/4.jpg", "b/film.mov"]
    assert [o.key for o in select(objects, keep, limit=3, kind="image")] == ["a/1.jpg", "b/4.jpg"]
    assert [o.key for o in select(objects, keep, limit=3, kind="video")] == ["b/film.mov"]
    assert [o.key for o in select(objects, KeyFilter())] == keys
    assert list(pages(select(objects, KeyFilter()), 3))[-1] == {"key": ["c/6.txt"], "size": [1]}


def test_config_refuses_to_write_into_the_source(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="overlaps SRC"):
        ArchiveConfig(src="s3://b/archive", dst="s3://b/archive/colorized")
    with pytest.raises(ValueError, match="overlaps SRC"):
        ArchiveConfig(src=str(tmp_path / "a" / "b"), dst=str(tmp_path / "a"))
    with pytest.raises(ValueError, match="inside SRC"):
        archive_config("s3://b/archive", "s3://b/out", report="s3://b/archive/reports")
    with pytest.raises(ValueError, match="workers"):
        archive_config("s3://b/a", "s3://b/c", workers=(2, 1))
    with pytest.raises(ValueError, match="format"):
        archive_config("s3://b/a", "s3://b/c", format="bmp")
    predictor = PredictorConfig(upsample="bilinear", limits=ImageLimits(max_pixels=1000))
    model = ModelSpec(preset="test", predictor=predictor)
    cfg = ArchiveConfig("s3://b/a", "s3://b/c", resources=Resources(batch_size=4), model=model)
    assert cfg.report_location.url == "s3://b/c/_reports/"
    assert cfg.limits.max_pixels == 1000  # the fetch stage and the dry run read the model's own limits
    spec = cfg.colorizer_factory()  # what each actor builds: the model, with forward passes of batch_size
    assert spec == model.with_predictor(max_batch_size=4) and spec == cfg.colorizer_factory()
    with pytest.raises(ValueError, match="upsample"):
        archive_config("s3://b/a", "s3://b/c", upsample="nearest")  # PredictorConfig checks the model's settings
    with pytest.raises(ValueError, match="quality"):
        archive_config("s3://b/a", "s3://b/c", quality=0)


def test_resources_default_to_the_cluster() -> None:
    cpu = Resources().resolve({"CPU": 2.0})
    # on 2 CPUs one actor with both cores' threads; it, the listing's repartition step (one CPU slot) and an
    # I/O task (0.25) must fit, or the pipeline waits forever for a slot
    assert (cpu.workers, cpu.cpus_per_worker, cpu.cpus_per_task, cpu.torch_threads) == ((1, 1), 0.75, 0.25, 2)
    assert cpu.workers[1] * cpu.cpus_per_worker + 1.0 + cpu.cpus_per_task <= 2.0
    assert (cpu.forward_batch, cpu.io_batch_size, cpu.actor_batch) == (1, 16, 16)
    config = archive_config("s3://b/a", "s3://b/c").resolve({"CPU": 16.0})  # the config resolves its resources
    assert config.resolved and config.resources.workers == (7, 15) and config.forward_batch == 1
    assert config.resources.torch_threads == 1
    gpu = Resources(gpus_per_worker=0.25).resolve({"CPU": 16.0, "GPU": 2.0})
    assert (gpu.workers, gpu.cpus_per_worker, gpu.cpus_per_task, gpu.forward_batch) == ((1, 8), 1.0, 0.25, 16)
    assert (gpu.io_batch_size, gpu.torch_threads, gpu.prefetch_batches) == (16, 2, 2)
    mine = Resources(workers=(1, 3), cpus_per_task=2, torch_threads=4).resolve({"CPU": 8.0})
    assert (mine.workers, mine.cpus_per_task, mine.torch_threads, mine.cpus_per_worker) == ((1, 3), 2, 4, 0.75)


def _fake_listing(n: int) -> Iterator[ObjectInfo]:
    for i in range(n):
        yield ObjectInfo(f"box-{i // 1000:04d}/scan-{i:07d}.jpg", 1_000_000 + i)


def _peak_while_listing(n: int) -> tuple[int, int]:
    """(peak traced bytes, rows) while streaming ``n`` keys through selection and the read task's blocks."""
    listing = KeyListing(lambda: _fake_listing(n), KeyFilter(exclude=("*7.jpg",)), None, "all")
    tracemalloc.start()
    rows = 0
    for block in listing.read_blocks():
        rows += block.num_rows
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, rows


def test_listing_memory_is_flat_in_the_number_of_keys() -> None:
    small_peak, small_rows = _peak_while_listing(10_000)
    big_peak, big_rows = _peak_while_listing(100_000)
    assert (small_rows, big_rows) == (9_000, 90_000)
    # Materialising 100k keys would take >10 MB; streaming holds one page, whatever the archive's size.
    assert big_peak < 2 * 1024 * 1024
    assert big_peak < 1.5 * small_peak + 256 * 1024


def test_summary_counts_and_formats() -> None:
    summary = Summary(report="r/")
    rows: list[dict[str, Any]] = [
        {"key": "a.jpg", "status": "ok", "bytes_in": 10, "bytes_out": 30, "width": 4, "height": 2, "colorize_ms": 5.0},
        {"key": "b.jpg", "status": "skipped", "bytes_in": 10, "bytes_out": 30},
        {"key": "c.jpg", "status": "failed", "reason": "TruncatedImageError: image data is truncated"},
        {"key": "d.jpg", "status": "failed", "reason": "TruncatedImageError: again"},
        {"key": "e.mp4", "status": "failed", "reason": "InvalidVideoError: no video stream"},
    ]
    for row in rows:
        summary.add(row)
    assert (summary.total, summary.ok, summary.skipped, summary.failed, summary.videos) == (5, 1, 1, 3, 1)
    assert summary.failures == {"TruncatedImageError": 2, "InvalidVideoError": 1}
    assert (summary.bytes_in, summary.bytes_out, summary.pixels) == (10, 30, 8)  # the skipped one was not read
    summary.seconds, summary.first_row_seconds, summary.first_ok = 2.0, 1.0, 0
    text = summary.format()
    assert "1 colorized, 1 skipped" in text and "failed 2 x TruncatedImageError" in text
    assert summary.images_per_second == 0.5 and summary.steady_images_per_second == 1.0


def test_report_parts_and_merge_across_runs(tmp_path: Path) -> None:
    store = open_store(tmp_path)

    def run(run_id: str, rows: list[dict[str, object]], flush_rows: int = 2) -> None:
        writer = ReportWriter(store, "", run_id, flush_rows=flush_rows)
        summary = Summary(run_id=run_id)
        for row in rows:
            writer.add(row)
            summary.add(row)
        writer.close(summary)

    run("1-first", [{"key": "a", "status": "ok", "bytes_out": 5}, {"key": "b", "status": "failed", "reason": "X: y"}])
    run("2-resume", [{"key": "a", "status": "skipped"}, {"key": "b", "status": "ok"}, {"key": "c", "status": "ok"}])
    assert sorted(p.name for p in (tmp_path / "2-resume").iterdir()) == [
        "part-00000.jsonl",
        "part-00001.jsonl",
        "summary.json",
    ]
    assert json.loads((tmp_path / "2-resume" / "summary.json").read_text())["total"] == 3
    merged = load_report(str(tmp_path)).set_index("key")
    assert list(merged.index) == ["a", "b", "c"]
    assert merged.loc["a", "status"] == "ok" and merged.loc["a", "run"] == "1-first"  # skipped yields
    assert merged.loc["b", "status"] == "ok" and merged.loc["b", "run"] == "2-resume"  # latest wins
    assert len(load_report(str(tmp_path), merge=False)) == 5
