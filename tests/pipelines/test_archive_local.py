"""The archive job on local folders: a crashed worker is retried, the ``colorize archive`` command, and video
objects routed whole to the video colorizer."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from colorize.cli import main
from pipelines.archive import load_report, open_store, run_archive
from pipelines.archive.storage import TEMP_MARK
from tests import imagegen
from tests.pipelines.archive_helpers import TinyPredictor, archive_config, assert_colorized

pytestmark = pytest.mark.slow


def small_archive(root: Path) -> dict[str, bytes]:
    objects = {
        f"{folder}/photo-{i}.jpg": imagegen.grey_jpeg(40 + 6 * i, 32 + 4 * i, seed=i)
        for i, folder in enumerate(["1900s", "1900s/paris", "1910s", "1910s/war/letters"] * 3)
    }
    objects["1910s/war/rgba.png"] = imagegen.rgba_png(36, 28)
    objects["1910s/war/rotated.jpg"] = imagegen.exif_rotated_jpeg(40, 24)
    store = open_store(root)
    for key, data in objects.items():
        store.put(key, data)
    return objects


def test_local_folders_and_a_crashed_worker_is_retried(ray_session: Any, tmp_path: Path) -> None:
    objects = small_archive(tmp_path / "src")
    marker = tmp_path / "crashed"
    cfg = archive_config(
        src=str(tmp_path / "src"), dst=str(tmp_path / "dst"), quality=95, io_batch_size=4, progress=False
    )
    summary = run_archive(cfg, TinyPredictor(crash_marker=str(marker)))
    assert marker.exists()  # the first inference call killed its actor process...
    assert (summary.ok, summary.failed) == (len(objects), 0)  # ...and Ray restarted it and retried the batch
    for key, data in objects.items():
        assert_colorized(data, (tmp_path / "dst" / key).read_bytes())
    assert not [p for p in (tmp_path / "dst").rglob("*") if TEMP_MARK in p.name]
    assert len(load_report(str(tmp_path / "dst" / "_reports"))) == len(objects)


def test_the_archive_command(ray_session: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    small_archive(tmp_path / "src")
    (tmp_path / "src" / "1900s" / "notes.txt").write_bytes(imagegen.NOT_AN_IMAGE)
    src, dst, report = str(tmp_path / "src"), str(tmp_path / "dst"), str(tmp_path / "report")
    common = ["--preset", "test", "--device", "cpu", "--no-progress"]
    assert main(["archive", src, dst, *common, "--format", "webp", "--limit", "5", "--report", report]) == 1
    out = capsys.readouterr().out
    assert "5 objects: 4 colorized, 0 skipped (output exists), 1 failed" in out
    assert "failed 1 x NotAnImageError" in out
    assert sorted(p.suffix for p in (tmp_path / "dst").rglob("*.*")) == [".webp"] * 4
    assert len(load_report(report)) == 5 and not (tmp_path / "dst" / "_reports").exists()

    assert main(["archive", src, dst, *common, "--format", "webp", "--exclude", "*.txt", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run: 14 objects" in out and "4 already have an output" in out

    manifest = tmp_path / "keys.csv"
    manifest.write_text("key\n1910s/war/rgba.png\n1900s/photo-0.jpg\n" + f"{src}/1900s/paris/photo-1.jpg\n")
    assert main(["archive", src, str(tmp_path / "from-manifest"), *common, "--manifest", str(manifest)]) == 0
    assert "3 objects: 3 colorized" in capsys.readouterr().out
    assert len(list((tmp_path / "from-manifest").rglob("photo-*.jpg"))) == 2

    assert main(["archive", src, str(tmp_path / "src" / "out"), *common]) == 2
    assert "overlaps SRC" in capsys.readouterr().err


def film(frames: int = 10, width: int = 64, height: int = 48) -> bytes:
    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            grey = np.roll(imagegen.gradient(width, height, seed=1), 3 * i, axis=1)
            frame = av.VideoFrame.from_ndarray(np.repeat(grey[..., None], 3, axis=2), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def test_video_objects_go_whole_to_the_video_colorizer(ray_session: Any, tmp_path: Path) -> None:
    try:
        from pipelines.video import colorize_video  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"pipelines.video (colorize_video) is not available: {exc}")
    import av

    store = open_store(tmp_path / "src")
    store.put("films/reel.mp4", film())
    store.put("films/broken.mov", b"\x00\x00\x00\x18ftypqt  " + b"garbage" * 100)
    store.put("stills/frame.jpg", imagegen.grey_jpeg(40, 30))
    cfg = archive_config(
        src=str(tmp_path / "src"), dst=str(tmp_path / "dst"), preset="test", device="cpu", progress=False
    )
    summary = run_archive(cfg)
    assert (summary.total, summary.ok, summary.failed, summary.videos) == (3, 2, 1, 2)
    report = load_report(str(tmp_path / "dst" / "_reports")).set_index("key")
    assert report.loc["films/reel.mp4", "status"] == "ok" and report.loc["films/reel.mp4", "detail"]
    assert report.loc["films/broken.mov", "reason"].startswith("InvalidVideoError")
    with av.open(str(tmp_path / "dst" / "films" / "reel.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 10 and frames[0].shape == (48, 64, 3)
    rerun = run_archive(cfg)
    assert (rerun.skipped, rerun.failed) == (2, 1)  # the finished film is skipped like any output


@pytest.mark.parametrize("gpus", [0.0, 0.5])
def test_io_stays_off_the_colorize_actor(
    ray_session: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], gpus: float
) -> None:
    """Ray Data may fuse a task stage into the next actor stage; the plan must keep downloads and uploads in
    their own tasks so that the device never waits on the store."""
    from pipelines.archive.pipeline import build_image_dataset

    cfg = archive_config(src=str(tmp_path / "src"), dst=str(tmp_path / "dst"), gpus_per_worker=gpus)
    cfg = cfg.resolve({"CPU": 16.0, "GPU": 1.0})
    store = open_store(tmp_path)
    build_image_dataset(cfg, store, store, TinyPredictor()).explain()
    optimized = capsys.readouterr().out.split("Physical Plan (Optimized)")[-1]
    assert "ActorPoolMapOperator[MapBatches(ColorizeWorker)]" in optimized
    assert "TaskPoolMapOperator[MapBatches(fetch)]" in optimized
    assert "TaskPoolMapOperator[MapBatches(upload)]" in optimized


def test_the_bulk_job_gives_the_predictors_pixels(ray_session: Any, tmp_path: Path) -> None:
    """Every output is what the predictor's own bytes-to-bytes call gives for that object (the CLI and the
    API call the same pixel path), and only encoded bytes cross from the actor to the upload tasks."""
    from model.encoded import EncodeRequest
    from pipelines.archive.stages import ColorizeWorker, StageContext, fetch

    objects = small_archive(tmp_path / "src")
    cfg = archive_config(src=str(tmp_path / "src"), dst=str(tmp_path / "dst"), format="png", progress=False)
    summary = run_archive(cfg, TinyPredictor())
    assert (summary.ok, summary.failed) == (len(objects), 0)
    predictor = TinyPredictor()()
    for key, data in objects.items():
        output = (tmp_path / "dst" / output_name(key)).read_bytes()
        assert_colorized(data, output)
        (expected,) = predictor.colorize_encoded([EncodeRequest(data, format="png")])
        got, want = (np.asarray(Image.open(io.BytesIO(b)).convert("RGB"), np.int16) for b in (output, expected.data))
        assert np.abs(got - want).max() <= 1

    store = open_store(tmp_path / "src")
    keys = sorted(objects)[:3]
    batch = fetch(
        {"key": np.array(keys, dtype=object), "size": np.array([len(objects[k]) for k in keys])},
        StageContext(src=store, dst=open_store(tmp_path / "unused")),
    )
    assert [bytes(x) for x in batch["data"]] == [objects[k] for k in keys]  # fetch only downloads
    done = ColorizeWorker(TinyPredictor())(batch)
    for i in range(len(keys)):
        with Image.open(io.BytesIO(bytes(done["data"][i]))) as image:  # encoded bytes, not pixel planes
            assert image.format in {"JPEG", "PNG", "WEBP", "TIFF"}
            assert image.size == (int(done["width"][i]), int(done["height"][i]))


def output_name(key: str) -> str:
    return key.rsplit(".", 1)[0] + ".png"
