"""The archive job through the real HTTP path with S3 faults (a fault-injecting proxy in front of moto), a
driver killed with SIGKILL mid-run, and two jobs writing the same DST at once.

In every case: every valid object has exactly one output at its mirrored key, and it is a whole, correct
image (no partial object, nothing stray beside the outputs and the reports); retries are counted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from pipelines.archive import ArchiveConfig, load_report, load_summaries, open_store, output_key, run_archive
from pipelines.archive.storage import RetryPolicy
from tests.pipelines.archive_helpers import MAX_BYTES, MotoS3, all_objects, archive_config, assert_colorized, moto_s3
from tests.pipelines.fault_proxy import FaultPlan, FaultProxy

pytestmark = pytest.mark.slow
__all__ = ["moto_s3"]  # the fixture, imported for this module
BAD = ("broken/truncated-1.jpg", "notes/readme.txt", "scans/float.tif")
FAST_RETRIES = RetryPolicy(max_attempts=8, base_delay=0.05, max_delay=0.5)


@pytest.fixture(scope="module")
def archive(moto_s3: MotoS3) -> dict[str, Any]:
    """15 images and 3 bad objects at s3://faulty/src/, uploaded straight to moto (not through the proxy)."""
    objects, bad = all_objects()
    valid = [k for k in objects if k not in bad][::3][:16]  # every kind of image, fewer of each
    chosen = {k: objects[k] for k in [*valid, *BAD]}
    url = moto_s3.bucket("faulty")
    store = open_store(url, moto_s3.options)
    for key, data in chosen.items():
        store.put(f"src/{key}", data)
    expected = {output_key(k, "same")[0]: chosen[k] for k in valid}
    return {"src": f"{url}/src", "objects": chosen, "expected": expected}


@pytest.fixture(scope="module")
def proxy(moto_s3: MotoS3) -> Iterator[FaultProxy]:
    """20% of GETs, PUTs, HEADs and LISTs fail (SlowDown, 500, reset, slow), seeded: twice the issue's 10%,
    so that a small test archive still meets a few of every kind."""
    plan = FaultPlan(share={"get": 0.2, "put": 0.2, "head": 0.2, "list": 0.2}, seed=14, slow_s=0.3)
    with FaultProxy(moto_s3.endpoint_url, plan) as p:
        yield p


def config(archive: dict[str, Any], dst: str, options: Any, **changes: Any) -> ArchiveConfig:
    base: dict[str, Any] = dict(
        src=archive["src"],
        dst=dst,
        storage=options,
        preset="test",
        device="cpu",
        max_bytes=MAX_BYTES,
        quality=95,
        io_batch_size=4,
        workers=(1, 1),
        progress=False,
    )
    return archive_config(**{**base, **changes})


def faulty_options(moto: MotoS3, proxy: FaultProxy) -> Any:
    return replace(moto.options, endpoint_url=proxy.url, retry=FAST_RETRIES, read_timeout=5.0)


def check_outputs(archive: dict[str, Any], dst: str, options: Any) -> dict[str, bytes]:
    """Exactly the expected outputs, each whole and correct; nothing else but reports."""
    store = open_store(dst, options)
    keys = [o.key for o in store.iter_objects()]
    outputs = {k: store.get(k) for k in keys if not k.startswith("_reports/")}
    assert sorted(outputs) == sorted(archive["expected"])  # none missing, none stray, none duplicated
    assert all(k.startswith("_reports/") for k in keys if k not in outputs)
    for key, data in outputs.items():
        assert_colorized(archive["expected"][key], data)  # decodes in full: no partial object
    return outputs


def test_a_fifth_of_s3_requests_failing(archive: dict[str, Any], moto_s3: MotoS3, proxy: FaultProxy) -> None:
    dst = moto_s3.bucket("faulty-out") + "/run"
    before = sum(n for (_, kind), n in proxy.faults.items() if kind != "slow")
    summary = run_archive(config(archive, dst, faulty_options(moto_s3, proxy)))
    injected = sum(n for (_, kind), n in proxy.faults.items() if kind != "slow") - before
    assert (summary.ok, summary.failed, summary.skipped) == (len(archive["expected"]), len(BAD), 0)
    assert "StorageError" not in summary.failures  # every transient fault was retried away
    check_outputs(archive, dst, moto_s3.options)
    assert injected >= 4, proxy.faults  # the test means something: faults really hit the job
    # Every injected error was retried once and counted, except those on the report's final writes.
    assert 1 <= sum(summary.retries.values()) <= injected, (summary.retries, proxy.faults)
    assert set(summary.retries) <= {"list", "head", "get", "put"}
    rows = load_report(f"{dst}/_reports", moto_s3.options, merge=False)
    assert sorted(rows["key"]) == sorted(archive["objects"])  # one row per object, none twice
    (saved,) = load_summaries(f"{dst}/_reports", moto_s3.options)
    assert saved["retries"] == summary.retries


DRIVER = """
import json, sys
from pipelines.archive import run_archive
from pipelines.archive.storage import RetryPolicy, StorageOptions
from tests.pipelines.archive_helpers import TinyPredictor, archive_config
retry = RetryPolicy(base_delay=0.05, max_delay=0.5)
config = archive_config(**json.loads(sys.argv[1]), storage=StorageOptions(**json.loads(sys.argv[2]), retry=retry))
progress = lambda s: print("rows", s.total, flush=True)
if sys.argv[4] == "cli":  # the command's own path: signal handling, summary, exit status
    from colorize.commands.archive import execute
    sys.exit(execute(config, colorizer_factory=TinyPredictor(delay=float(sys.argv[3])), progress=progress))
summary = run_archive(config, TinyPredictor(delay=float(sys.argv[3])), progress=progress)
print("summary", json.dumps(summary.to_dict()), flush=True)
"""


def start_driver(
    archive: dict[str, Any], dst: str, options: Any, delay: float, mode: str = "api", **changes: Any
) -> Any:
    """A separate driver process on the session's Ray cluster (RAY_ADDRESS), running one archive job."""
    import ray

    fields = {
        "src": archive["src"],
        "dst": dst,
        "preset": "test",
        "device": "cpu",
        "max_bytes": MAX_BYTES,
        "quality": 95,
        "io_batch_size": 2,
        "workers": [1, 1],
        "progress": False,
        **changes,
    }
    storage = {
        k: getattr(options, k)
        for k in ("endpoint_url", "region_name", "aws_access_key_id", "aws_secret_access_key", "read_timeout")
    }
    env = {**os.environ, "RAY_ADDRESS": ray.get_runtime_context().gcs_address}
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, json.dumps(fields), json.dumps(storage), str(delay), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )


def test_sigkill_of_the_driver_then_rerun_gives_the_uninterrupted_outputs(
    ray_session: Any, archive: dict[str, Any], moto_s3: MotoS3, proxy: FaultProxy
) -> None:
    dst = moto_s3.bucket("killed-out") + "/run"
    options = faulty_options(moto_s3, proxy)
    driver = start_driver(archive, dst, options, delay=0.4)
    assert driver.stdout is not None
    for line in driver.stdout:  # wait until the job is well under way, then kill it without warning
        if line.startswith("rows") and int(line.split()[1]) >= 4:
            break
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=30)
    time.sleep(2.0)  # tasks of the dead driver's job are being torn down by Ray
    store = open_store(dst, moto_s3.options)
    partial = [o.key for o in store.iter_objects() if not o.key.startswith("_reports/")]
    assert 0 < len(partial) < len(archive["expected"])
    for key in partial:
        assert_colorized(archive["expected"][key], store.get(key))  # what exists is whole

    rerun = run_archive(config(archive, dst, options))
    assert rerun.skipped >= len(partial) and rerun.ok == len(archive["expected"]) - rerun.skipped
    check_outputs(archive, dst, moto_s3.options)
    merged = load_report(f"{dst}/_reports", moto_s3.options)
    assert sorted(merged["key"]) == sorted(archive["objects"])


def test_two_jobs_on_the_same_dst_at_once(
    ray_session: Any, archive: dict[str, Any], moto_s3: MotoS3, proxy: FaultProxy
) -> None:
    dst = moto_s3.bucket("shared-out") + "/run"
    options = faulty_options(moto_s3, proxy)
    small = {"cpus_per_worker": 0.5, "cpus_per_task": 0.25}  # both jobs fit the 2-CPU test cluster at once
    drivers = [start_driver(archive, dst, options, delay=0.0, **small) for _ in range(2)]
    summaries = []
    for driver in drivers:
        out, _ = driver.communicate(timeout=300)
        line = next(x for x in out.splitlines() if x.startswith("summary "))
        summaries.append(json.loads(line.split(" ", 1)[1]))
    assert len({s["run_id"] for s in summaries}) == 2  # separate reports
    for s in summaries:
        assert s["total"] == len(archive["objects"]) and s["failed"] == len(BAD) and not s["interrupted"]
    check_outputs(archive, dst, moto_s3.options)
    assert len(load_summaries(f"{dst}/_reports", moto_s3.options)) == 2


def test_sigterm_writes_the_report_so_far_and_exits_143(
    ray_session: Any, archive: dict[str, Any], moto_s3: MotoS3, proxy: FaultProxy
) -> None:
    dst = moto_s3.bucket("stopped-out") + "/run"
    options = faulty_options(moto_s3, proxy)
    driver = start_driver(archive, dst, options, delay=0.4, mode="cli")
    assert driver.stdout is not None
    for line in driver.stdout:
        if line.startswith("rows") and int(line.split()[1]) >= 4:
            break
    driver.send_signal(signal.SIGTERM)  # what Kubernetes sends a RayJob's driver
    assert driver.wait(timeout=60) == 143
    (summary,) = load_summaries(f"{dst}/_reports", moto_s3.options)
    assert summary["interrupted"] and 4 <= summary["total"] < len(archive["objects"])
    rows = load_report(f"{dst}/_reports", moto_s3.options, merge=False)
    assert len(rows) == summary["total"]  # the report so far: every row the summary counts
    rerun = run_archive(config(archive, dst, options))
    assert rerun.total == len(archive["objects"]) and not rerun.interrupted
    check_outputs(archive, dst, moto_s3.options)
