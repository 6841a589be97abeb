"""The archive job end to end against a real S3 API (moto on loopback) and local Ray: every valid object
colorized at its mirrored key, every bad one reported with its reason, reruns skip, interrupted runs resume
to the same result, SRC untouched."""

from __future__ import annotations

import io
import time
from typing import Any

import numpy as np
import pytest
from PIL import Image

from model import decode_image
from pipelines.archive import (
    ArchiveConfig,
    ArchiveInterrupted,
    Summary,
    dry_run,
    load_report,
    load_summaries,
    open_store,
    output_key,
    run_archive,
)
from tests.pipelines.archive_helpers import (
    MAX_BYTES,
    MotoS3,
    TinyPredictor,
    all_objects,
    archive_config,
    assert_colorized,
    moto_s3,
)

pytestmark = pytest.mark.slow
__all__ = ["moto_s3"]  # the fixture, imported for this module


@pytest.fixture(scope="module")
def archive(moto_s3: MotoS3) -> dict[str, Any]:
    """Upload the test archive to s3://archive/photos/ (plus a neighbour outside the prefix)."""
    objects, bad = all_objects()
    url = moto_s3.bucket("archive")
    store = open_store(url, moto_s3.options)
    for key, data in objects.items():
        store.put(f"photos/{key}", data)
    store.put("elsewhere/not-selected.jpg", objects["portraits/grey-02.jpg"])
    return {"src": f"{url}/photos", "objects": objects, "bad": bad, "options": moto_s3.options}


def config(archive: dict[str, Any], dst: str, **changes: Any) -> ArchiveConfig:
    base: dict[str, Any] = dict(
        src=archive["src"],
        dst=dst,
        storage=archive["options"],
        preset="test",
        device="cpu",
        max_bytes=MAX_BYTES,
        quality=95,  # JPEG quantization of these noisy test images alone moves L* by ~1 at 92
        io_batch_size=4,
        workers=(1, 1),  # one actor starts faster than two on a 2-core test machine
        progress=False,
    )
    return archive_config(**{**base, **changes})


def snapshot(url: str, options: Any) -> dict[str, tuple[int, str]]:
    """key -> (size, ETag) of every object under ``url``."""
    store = open_store(url, options)
    out = {}
    for obj in store.iter_objects():
        head = store.client.head_object(Bucket=store.location.bucket, Key=store.location.prefix + obj.key)  # type: ignore[attr-defined]
        out[obj.key] = (obj.size, head["ETag"])
    return out


def outputs(url: str, options: Any) -> dict[str, bytes]:
    store = open_store(url, options)
    return {o.key: store.get(o.key) for o in store.iter_objects() if not o.key.startswith("_reports/")}


@pytest.fixture(scope="module")
def first_run(ray_session: Any, archive: dict[str, Any], moto_s3: MotoS3) -> dict[str, Any]:
    dst = moto_s3.bucket("colorized")
    src_before = snapshot(archive["src"], archive["options"])
    planned = dry_run(config(archive, dst))
    summary = run_archive(config(archive, dst))
    return {
        "dst": dst,
        "summary": summary,
        "planned": planned,
        "src_before": src_before,
        "outputs": outputs(dst, archive["options"]),
    }


def test_dry_run_counts_objects_bytes_and_unreadable(archive: dict[str, Any], first_run: dict[str, Any]) -> None:
    planned: Summary = first_run["planned"]
    objects = archive["objects"]
    assert planned.dry_run and planned.total == len(objects) >= 50
    assert planned.bytes_in == sum(len(v) for v in objects.values())
    assert planned.would_skip == 0
    assert planned.would_fail == 3  # two empty objects and one over max_bytes, known from the listing alone
    after = dry_run(config(archive, first_run["dst"]))
    assert after.would_skip == len(objects) - len(archive["bad"])


def test_every_valid_object_is_colorized_at_its_mirrored_key(
    archive: dict[str, Any], first_run: dict[str, Any]
) -> None:
    summary: Summary = first_run["summary"]
    bad = archive["bad"]
    valid = {k: v for k, v in archive["objects"].items() if k not in bad}
    assert (summary.total, summary.ok, summary.skipped, summary.failed) == (
        len(archive["objects"]),
        len(valid),
        0,
        len(bad),
    )
    produced = first_run["outputs"]
    assert set(produced) == {output_key(k, "same")[0] for k in valid}
    for key, data in valid.items():
        assert_colorized(data, produced[output_key(key, "same")[0]])


def test_exif_survives(archive: dict[str, Any], first_run: dict[str, Any]) -> None:
    with Image.open(io.BytesIO(first_run["outputs"]["rotated/exif-0.jpg"])) as image:
        exif = image.getexif()
        assert exif.get(0x010E) == "A test caption"
        assert exif.get(0x0132) == "1921:05:04 10:00:00"
        assert image.size == (48, 80)  # stored upright: the input was 80x48 with orientation 6


def test_bad_objects_are_reported_with_their_reason(archive: dict[str, Any], first_run: dict[str, Any]) -> None:
    report = load_report(f"{first_run['dst']}/_reports", archive["options"]).set_index("key")
    assert len(report) == len(archive["objects"])
    for key, error in archive["bad"].items():
        row = report.loc[key]
        assert row["status"] == "failed"
        assert row["reason"].startswith(error + ":"), (key, row["reason"])
        assert row["output"] == ""
    assert report.loc["scans/huge.png", "fetch_ms"] == 0  # too large: never downloaded
    assert first_run["summary"].failures == {
        "TruncatedImageError": 2,
        "EmptyImageError": 2,
        "NotAnImageError": 2,
        "ImageTooLargeError": 2,
        "UnsupportedImageError": 1,
    }
    ok = report[report["status"] == "ok"]
    assert (ok["width"] > 0).all() and (ok["bytes_out"] > 0).all() and (ok["colorize_ms"] > 0).all()


def test_source_is_never_written(archive: dict[str, Any], first_run: dict[str, Any]) -> None:
    assert snapshot(archive["src"], archive["options"]) == first_run["src_before"]


def test_rerun_skips_everything(archive: dict[str, Any], first_run: dict[str, Any]) -> None:
    before = snapshot(first_run["dst"], archive["options"])
    summary = run_archive(config(archive, first_run["dst"]))
    assert summary.ok == 0
    assert summary.skipped == len(archive["objects"]) - len(archive["bad"])
    assert summary.failed == len(archive["bad"])  # bad objects are tried again (they may have been fixed)
    after = snapshot(first_run["dst"], archive["options"])
    assert {k: v for k, v in after.items() if not k.startswith("_reports/")} == {
        k: v for k, v in before.items() if not k.startswith("_reports/")
    }
    assert [s["total"] for s in load_summaries(f"{first_run['dst']}/_reports", archive["options"])][-1] == len(
        archive["objects"]
    )


def test_interrupted_run_resumes_to_the_same_outputs(
    archive: dict[str, Any], first_run: dict[str, Any], moto_s3: MotoS3
) -> None:
    dst = moto_s3.bucket("resumed")

    def stop_early(summary: Summary) -> None:
        if summary.total >= 8:
            raise KeyboardInterrupt  # what Ctrl-C does in the driver

    slow = TinyPredictor(delay=0.5)  # ~6 s of inference: the interrupt lands early in the run
    with pytest.raises(ArchiveInterrupted) as stopped:
        run_archive(config(archive, dst, batch_size=4), slow, progress=stop_early)
    assert stopped.value.summary.interrupted and stopped.value.summary.total >= 8
    partial = outputs(dst, archive["options"])
    time.sleep(1.5)
    assert outputs(dst, archive["options"]).keys() == partial.keys()  # the job stopped: nothing more appears
    assert 0 < len(partial) < len(first_run["outputs"])

    resumed = run_archive(config(archive, dst))
    assert resumed.total == len(archive["objects"])  # the resumed run's own report covers everything
    assert resumed.skipped >= len(partial)
    final = outputs(dst, archive["options"])
    assert set(final) == set(first_run["outputs"])
    for key, data in final.items():
        a, b = decode_image(data), decode_image(first_run["outputs"][key])
        assert a.size == b.size and np.abs(a.lightness - b.lightness).max() < 0.5

    merged = load_report(f"{dst}/_reports", archive["options"]).set_index("key")
    assert len(merged) == len(archive["objects"])
    for key in archive["objects"]:
        expected = {"failed"} if key in archive["bad"] else {"ok", "skipped"}
        assert merged.loc[key, "status"] in expected
    summaries = load_summaries(f"{dst}/_reports", archive["options"])
    assert [s["interrupted"] for s in summaries] == [True, False]


def test_include_exclude_limit_and_format(archive: dict[str, Any], moto_s3: MotoS3) -> None:
    dst = moto_s3.bucket("selected")
    cfg = config(archive, dst, include=("letters/*", "postcards/*"), exclude=("*/march/*",), format="png", limit=9)
    summary = run_archive(cfg)
    assert summary.total == 9
    produced = outputs(dst, archive["options"])
    assert all(k.endswith(".png") and k.startswith(("letters/", "postcards/")) for k in produced)
    assert not any("/march/" in k for k in produced)
    assert len(produced) == summary.ok == 9 - summary.failed
