"""Archive job throughput: Ray Data pipeline vs. the same predictor in a plain in-process loop.

Both read the same greyscale JPEGs from a store (a local folder, or S3 through an embedded moto server) and
write colorized JPEGs back. The loop is what a user would write by hand: get, ``colorize``, encode, put, one
image at a time, with torch's default thread count and with one thread; ratios are against the faster of the
two. "Model only" runs the network alone on pre-decoded images: the bound no pipeline on the device beats.
Ray starts once before anything is timed; each pipeline run includes its actors' start-up and model loading,
which is why wall time and steady state (after the first results) are reported separately. Runs alternate
(loops, pipeline configs, loops, ...) so that a busy machine affects both sides alike.

    python benchmarks/archive.py                                   # CPU, tiny preset, 1024x768
    python benchmarks/archive.py --preset paper --images 12        # the published network's width
    python benchmarks/archive.py --device cuda --preset paper --images 2000 --model-images 512 \\
        --loop-threads 0 --repeats 1                               # GPU host: 1 actor/GPU, 4 actors/GPU
    python benchmarks/archive.py --fake-keys 100000                # driver memory with 100k keys
"""

from __future__ import annotations

import argparse
import gc
import io
import logging
import os
import platform
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from colorize.samples import sample_photos
from model import ModelSpec, PredictorConfig
from model.imageio import output_format
from pipelines.archive import (
    ArchiveConfig,
    Location,
    ObjectInfo,
    Outputs,
    Resources,
    Selection,
    StorageOptions,
    open_store,
    run_archive,
)

# ------------------------------------------------------------------------------------------- inputs


def make_images(n: int, width: int, height: int) -> Iterator[tuple[str, bytes]]:
    """``n`` distinct greyscale JPEGs of ``width`` x ``height``: crops and flips of the sample photos."""
    photos = [image.convert("L") for _, image in sample_photos()]
    rng = np.random.default_rng(0)
    for i in range(n):
        photo = photos[i % len(photos)]
        scale = max(width / photo.width, height / photo.height) * (1.0 + 0.3 * rng.random())
        big = photo.resize((int(photo.width * scale) + 1, int(photo.height * scale) + 1), Image.Resampling.BICUBIC)
        x, y = int(rng.integers(0, big.width - width + 1)), int(rng.integers(0, big.height - height + 1))
        crop = big.crop((x, y, x + width, y + height))
        if i // len(photos) % 2:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        buffer = io.BytesIO()
        crop.save(buffer, format="JPEG", quality=90)
        yield f"box-{i // 100:03d}/scan-{i:05d}.jpg", buffer.getvalue()


# -------------------------------------------------------------------------------------------- measures


@dataclass
class Result:
    label: str
    images: int
    wall: float  # seconds, start-up (model load, actors) included
    steady: float  # images/s once the first result is in
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.images / self.wall


def loop_baseline(spec: Any, src: Any, dst: Any, keys: list[str], quality: int, threads: int) -> Result:
    """get -> colorize -> encode -> put, one image at a time, in this process, with ``threads`` torch threads
    (0: torch's default, one per core)."""
    import torch

    default = torch.get_num_threads()
    torch.set_num_threads(threads or default)
    try:
        return _loop(spec, src, dst, keys, quality)
    finally:
        torch.set_num_threads(default)


def _loop(spec: Any, src: Any, dst: Any, keys: list[str], quality: int) -> Result:
    start = time.perf_counter()
    colorizer = spec()
    loaded = time.perf_counter()
    done: list[float] = []
    for key in keys:
        result = colorizer.colorize(src.get(key))
        dst.put(key, result.encode(output_format("same", result.source.format), quality))
        done.append(time.perf_counter())
    wall = done[-1] - start
    steady = (len(keys) - 1) / (done[-1] - done[0]) if len(keys) > 1 else 0.0
    import torch

    threads = torch.get_num_threads()
    return Result(f"loop, {threads} thread(s)", len(keys), wall, steady, {"load_s": round(loaded - start, 2)})


def model_bound(spec: Any, planes: list[np.ndarray], batch: int, threads: int) -> Result:
    """The network alone on pre-decoded L* planes, ``batch`` per forward pass: the rate no pipeline on this
    device can beat (with ``threads`` torch threads; 0 = torch's default)."""
    import torch

    default = torch.get_num_threads()
    torch.set_num_threads(threads or default)
    try:
        colorizer = spec()
        colorizer.predict_chroma(planes[:batch])  # warm-up: CUDA context, kernel selection
        start = time.perf_counter()
        for i in range(0, len(planes), batch):
            colorizer.predict_chroma(planes[i : i + batch])  # returns numpy: the device has finished
        seconds = time.perf_counter() - start
        label = f"model only, {torch.get_num_threads()} thread(s)" if colorizer.device.type == "cpu" else "model only"
    finally:
        torch.set_num_threads(default)
    return Result(label, len(planes), seconds, len(planes) / seconds, {"batch": batch})


def pipeline_run(label: str, config: ArchiveConfig) -> Result:
    summary = run_archive(config)
    assert summary.failed == 0 and summary.ok == summary.total, summary.format()
    per_image = {k[:-3]: round(v / summary.ok * 1e3, 1) for k, v in summary.stage_seconds.items()}
    notes = {"first_s": round(summary.first_row_seconds or 0.0, 2), "ms_per_image": per_image}
    return Result(label, summary.ok, summary.seconds, summary.steady_images_per_second, notes)


def parse_config(text: str) -> tuple[str, dict[str, Any]]:
    """``label:key=value:key=value`` with the names of the config's ``Resources`` fields (workers=1,2)."""
    label, *items = text.split(":")
    values: dict[str, Any] = {}
    for item in items:
        key, _, value = item.partition("=")
        if key == "workers":
            lo, _, hi = value.partition(",")
            values[key] = (int(lo), int(hi or lo))
        elif key in {"torch_threads", "batch_size", "io_batch_size", "io_threads", "prefetch_batches"}:
            values[key] = int(value)
        else:
            values[key] = float(value)
    return label, values


GPU_CONFIGS = (
    "1 actor per GPU:gpus_per_worker=1",
    "4 actors per GPU:gpus_per_worker=0.25:workers=4,4",
)
DEFAULT_CONFIGS = (
    # The defaults for CPU inference on 2 CPUs: single-threaded actors doing the whole pixel path (1 to 2 of
    # them, 0.75 CPU each), I/O tasks of 0.25 CPU beside them.
    "defaults",
    # Two single-threaded actors from the start.
    "2 actors x 1 thread:workers=2,2",
    # One actor using both cores (network and recombination kernel); I/O tasks beside it.
    "1 actor x 2 threads:workers=1,1:torch_threads=2:cpus_per_worker=1.5",
)


def throughput(args: argparse.Namespace) -> None:
    import ray

    ray.init(include_dashboard=False, logging_level=logging.WARNING)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"Ray resources {ray.cluster_resources()}"
    )
    gpu = args.device.startswith("cuda")
    configs = [parse_config(c) for c in (args.config or (GPU_CONFIGS if gpu else DEFAULT_CONFIGS))]
    with tempfile.TemporaryDirectory(prefix="archive-bench-") as tmp:
        src_url, dst_url, options, server = stores(args, Path(tmp))
        src = open_store(src_url, options)
        keys = []
        for key, data in make_images(args.images, args.width, args.height):
            src.put(key, data)
            keys.append(key)
        base = ArchiveConfig(
            src=src_url,
            dst=dst_url + "/ray",
            storage=options,
            selection=Selection(overwrite=True),
            outputs=Outputs(quality=args.quality, progress=False),
            resources=Resources(batch_size=args.batch_size),
            model=ModelSpec(args.weights, args.preset, PredictorConfig(device=args.device)),
        )
        spec = base.colorizer_factory()
        rows: list[tuple[int, Result]] = []
        from model import decode_image

        planes = [decode_image(src.get(k)).lightness for k in keys[: args.model_images]]
        forward = replace(base.resources, gpus_per_worker=1.0 if gpu else 0.0).forward_batch
        for threads in [0] if gpu else sorted(set(args.loop_threads)):
            bound = model_bound(spec, planes, forward, threads)
            rows.append((0, bound))
            print(f"{bound.label}: {bound.steady:.2f} img/s (batch {forward})")
        del planes
        for repeat in range(args.repeats):
            loops = []
            for threads in args.loop_threads:
                loop = loop_baseline(spec, src, open_store(dst_url + "/loop", options), keys, args.quality, threads)
                loops.append(loop)
                rows.append((repeat, loop))
                print(f"[{repeat}] {loop.label}: {loop.rate:.2f} img/s wall, {loop.steady:.2f} steady {loop.notes}")
            loop = max(loops, key=lambda r: r.steady)  # ratios are against the best loop of this repeat
            for label, values in configs:
                gc.collect()
                result = pipeline_run(label, base.replace(resources=replace(base.resources, **values)))
                result.notes["ratio_steady"] = round(result.steady / loop.steady, 3)
                result.notes["ratio_wall"] = round(result.rate / loop.rate, 3)
                rows.append((repeat, result))
                print(f"[{repeat}] {label}: {result.rate:.2f} img/s wall, {result.steady:.2f} steady {result.notes}")
        if server is not None:
            server.stop()
    report(args, rows)


def report(args: argparse.Namespace, rows: list[tuple[int, Result]]) -> None:
    print()
    print(
        f"{args.images} images {args.width}x{args.height}, preset {args.preset or 'default'}, device "
        f"{args.device}, store {args.store}, {args.repeats} repeats "
        "(median; ratios against the best loop of the same repeat)"
    )
    print(
        f"| {'run':<22} | {'wall img/s':>10} | {'steady img/s':>12} | {'ratio wall':>10} | {'ratio steady':>12} "
        f"| {'start-up s':>10} |"
    )
    print(f"|{'-' * 24}|{'-' * 12}:|{'-' * 14}:|{'-' * 12}:|{'-' * 14}:|{'-' * 12}:|")
    labels = list(dict.fromkeys(r.label for _, r in rows))
    med = statistics.median
    for label in labels:
        mine = [r for _, r in rows if r.label == label]
        wall, steady = med(r.rate for r in mine), med(r.steady for r in mine)
        startup = med(float(r.notes.get("first_s", r.notes.get("load_s", 0.0))) for r in mine)
        if "ratio_wall" in mine[0].notes:
            ratio_wall = med(r.notes["ratio_wall"] for r in mine)
            ratios = f"{ratio_wall:>10.2f} | {med(r.notes['ratio_steady'] for r in mine):>12.2f}"
        else:
            ratios = f"{'-':>10} | {'-':>12}"
        print(f"| {label:<22} | {wall:>10.2f} | {steady:>12.2f} | {ratios} | {startup:>10.1f} |")
    for label in labels:
        last = [r for _, r in rows if r.label == label][-1]
        if "ms_per_image" in last.notes:
            print(f"{label}: per-image stage time (ms, summed over workers) {last.notes['ms_per_image']}")


def stores(args: argparse.Namespace, tmp: Path) -> tuple[str, str, StorageOptions, Any]:
    if args.store == "local":
        return str(tmp / "src"), str(tmp / "dst"), StorageOptions(), None
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    options = StorageOptions(
        endpoint_url=f"http://{host}:{port}",
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )
    open_store("s3://bench", options).client.create_bucket(Bucket="bench")  # type: ignore[attr-defined]
    return "s3://bench/src", "s3://bench/dst", options, server


# ------------------------------------------------------------------------------------ driver memory


class FakeStore:
    """``n`` keys generated on the fly; every output "exists", so each object is a skipped report row.
    Exercises listing, all three stages and the driver's report loop without any image work."""

    def __init__(self, url: str, n: int) -> None:
        self.location, self.n = Location.parse(url), n

    def iter_objects(self) -> Iterator[ObjectInfo]:
        for i in range(self.n):
            yield ObjectInfo(f"box-{i // 1000:04d}/scan-{i:07d}.jpg", 2_000_000)

    def size(self, key: str) -> int | None:
        return 1_500_000

    def get(self, key: str) -> bytes:
        raise AssertionError("never read: every output exists")

    def put(self, key: str, data: bytes) -> None:
        pass  # report parts vanish

    def download(self, key: str, path: Path) -> None:
        raise AssertionError

    def upload(self, path: Path, key: str) -> None:
        raise AssertionError


def driver_memory(args: argparse.Namespace) -> None:
    import psutil
    import ray

    ray.init(include_dashboard=False, logging_level=logging.WARNING)
    process = psutil.Process()
    print(f"machine: {os.cpu_count()} CPUs; driver RSS while streaming N fake keys through the whole pipeline")
    print("| keys | seconds | RSS before MB | peak RSS MB | growth MB |")
    print("|---:|---:|---:|---:|---:|")
    for n in sorted({args.fake_keys // 10, args.fake_keys}):
        gc.collect()
        before, peak, stop = process.memory_info().rss, [0], threading.Event()

        def sample(peak: list[int] = peak, stop: threading.Event = stop) -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], process.memory_info().rss)
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        config = ArchiveConfig(
            src="s3://fake/src",
            dst="s3://fake/dst",
            outputs=Outputs(progress=False),
            resources=Resources(io_batch_size=1000, batch_size=1000),
            model=ModelSpec(preset="test", predictor=PredictorConfig(device="cpu")),
        )
        start = time.perf_counter()
        summary = run_archive(
            config,
            src_store=FakeStore("s3://fake/src", n),
            dst_store=FakeStore("s3://fake/dst", 0),
        )
        seconds = time.perf_counter() - start
        stop.set()
        sampler.join()
        assert summary.skipped == n, summary.format()
        mb = 1024 * 1024
        print(f"| {n:,} | {seconds:.1f} | {before / mb:.0f} | {peak[0] / mb:.0f} | {(peak[0] - before) / mb:.1f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=48)
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--height", type=int, default=768)
    p.add_argument("--preset", help="untrained network of this preset (default: the shipped weights)")
    p.add_argument("--weights")
    p.add_argument("--device", default="cpu")
    p.add_argument("--quality", type=int, default=92)
    p.add_argument("--batch-size", type=int, help="images per forward pass (default: 16 on GPUs, 1 on CPUs)")
    p.add_argument("--store", choices=["local", "moto"], default="local")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument(
        "--loop-threads",
        type=lambda t: [int(x) for x in t.split(",")],
        default=[0, 1],
        help="torch threads of the in-process loop baselines (0 = torch's default); ratios use the best",
    )
    p.add_argument("--config", action="append", help="pipeline config label:field=value:... (repeatable)")
    p.add_argument("--model-images", type=int, default=64, help="pre-decoded images for the model-only rate")
    p.add_argument("--fake-keys", type=int, help="measure driver memory with this many fake keys instead")
    args = p.parse_args()
    if args.fake_keys:
        driver_memory(args)
    else:
        throughput(args)


if __name__ == "__main__":
    main()
