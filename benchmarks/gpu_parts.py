"""The parts of :mod:`benchmarks.gpu_run`, one per process: ``python -m benchmarks.gpu_parts PART --out F``.

Each writes ``{"rows": [...], "note": "..."}`` as JSON. ``--smoke`` shrinks every input so the whole script runs
in seconds on a CPU: the GPU minutes are never spent on a typo.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np


def cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return "" if value is None else str(value)


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _rate(fn: Callable[[], Any], images: int, device: str, seconds: float) -> float:
    """Images/s of ``fn`` (``images`` per call), repeated for about ``seconds`` after two warm-up calls."""
    fn()
    fn()
    _sync(device)
    calls, start, least = 0, time.perf_counter(), 3 if seconds else 1
    while calls < least or time.perf_counter() - start < seconds:
        fn()
        calls += 1
    _sync(device)
    return calls * images / (time.perf_counter() - start)


# ------------------------------------------------------------------------------------------------ network
def network(device: str, smoke: bool) -> dict[str, Any]:
    import torch

    from model import Colorizer, PredictorConfig

    models = [("test (untrained)", "test")] if smoke else [("shipped", None), ("small", "small"), ("paper", "paper")]
    height, width = (48, 64) if smoke else (768, 1024)
    rows = []
    for name, preset in models:
        for working in (PredictorConfig.working_size, None):
            for batch in (1, 2) if smoke else (16, 64):
                config = PredictorConfig(device=device, max_batch_size=batch, working_size=working)
                colorizer = Colorizer.from_pretrained(preset=preset, config=config)
                planes = [torch.rand(height, width, device=device) * 100 for _ in range(batch)]
                rate = _rate(lambda: colorizer.predict_on_device(planes), batch, device, 0 if smoke else 2.0)  # noqa: B023
                rows.append({"model": name, "working size": working or "full", "batch": batch, "images/s": rate})
                print(rows[-1], flush=True)
    return {"rows": rows, "note": f"{width}x{height} L* planes already on the device; bf16 autocast on CUDA."}


# --------------------------------------------------------------------------------------------------- bulk
def _jpeg(args: tuple[int, int, int]) -> bytes:
    from PIL import Image
    from skimage import data

    width, height, seed = args
    photo = Image.fromarray(data.camera()).resize((width, height), Image.Resampling.BILINEAR)
    pixels = np.asarray(photo, np.int16)
    pixels = np.roll(pixels, seed * 37, axis=1) if seed % 2 else pixels[:, ::-1]
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels + seed % 7, 0, 255).astype(np.uint8), "L").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _archive(folder: Path, width: int, height: int, n: int) -> None:
    folder.mkdir(parents=True)
    with ProcessPoolExecutor() as pool:
        for i, data in enumerate(pool.map(_jpeg, [(width, height, i) for i in range(n)], chunksize=8)):
            (folder / f"scan-{i:05d}.jpg").write_bytes(data)


def bulk(device: str, smoke: bool) -> dict[str, Any]:
    import ray

    from model import ModelSpec, PredictorConfig
    from pipelines.archive import ArchiveConfig, Outputs, Resources, Selection, run_archive

    ray.init(include_dashboard=False, logging_level=logging.WARNING)
    gpus = 0.25 if device.startswith("cuda") else 0.0
    cases = [("test (untrained)", "test", 64, 48, 8)] if smoke else [
        ("shipped", None, 1024, 768, 3000),
        ("paper (untrained)", "paper", 1024, 768, 3000),
        ("shipped", None, 4000, 3000, 240),
    ]
    rows = []
    with tempfile.TemporaryDirectory(prefix="gpu-bulk-") as tmp:
        for name, preset, width, height, n in cases:
            src = Path(tmp) / f"src-{width}x{height}"
            if not src.exists():
                _archive(src, width, height, n)
            config = ArchiveConfig(
                src=str(src), dst=str(Path(tmp) / "dst"), selection=Selection(overwrite=True),
                outputs=Outputs(progress=False), resources=Resources(gpus_per_worker=gpus),
                model=ModelSpec(preset=preset, predictor=PredictorConfig(device=device)),
            )
            summary = run_archive(config)
            rows.append({
                "model": name, "images": f"{n} x {width}x{height}", "ok": summary.ok, "failed": summary.failed,
                "wall s": summary.seconds, "steady images/s": summary.steady_images_per_second,
                "first result s": summary.first_row_seconds,
            })
            print(rows[-1], flush=True)
    note = f"local folder store, {gpus or 'no'} GPU per actor (actors autoscale to fill the GPUs), defaults otherwise"
    return {"rows": rows, "note": note}


# ---------------------------------------------------------------------------------------------------- api
def api(device: str, smoke: bool) -> dict[str, Any]:
    import httpx

    from benchmarks import serve_load
    from services.launch import DEFAULT_CONFIG

    config = DEFAULT_CONFIG if not device.startswith("cuda") else DEFAULT_CONFIG.with_name("serve.gpu.yaml")
    args = argparse.Namespace(
        config=config, port=None, device=device, preset="test" if smoke else None, weights=None,
        batch_size=None, batch_wait=None, throughput_optimized=False,
    )
    size = 64 if smoke else 512
    body = serve_load.synthetic_jpeg(size)
    base = serve_load.start_server(args)
    url = f"{base}/v1/colorize?format=jpeg"
    rows = []
    try:
        httpx.get(f"{base}/v1/model", timeout=120)
        asyncio.run(serve_load.run_level(url, body, 4, 8, {}))  # warm-up
        for c in (1, 2) if smoke else (1, 8, 32, 64, 128, 256):
            level = asyncio.run(serve_load.run_level(url, body, c, 4 if smoke else max(200, 4 * c), {}))
            rows.append({
                "clients": c, "images/s": level.ok / level.seconds,
                "p50 ms": serve_load.percentile(level.latencies, 50) * 1e3,
                "p99 ms": serve_load.percentile(level.latencies, 99) * 1e3,
                "errors": level.errors, "mean batch": float(np.mean(level.batch_sizes or [0])),
            })
            print(rows[-1], flush=True)
    finally:
        import ray
        from ray import serve

        serve.shutdown()
        ray.shutdown()
    return {"rows": rows, "note": f"{size}x{size} greyscale JPEG in, JPEG out; config {Path(config).name}"}


# --------------------------------------------------------------------------------------------------- film
def film(device: str, smoke: bool) -> dict[str, Any]:
    try:
        import av  # noqa: F401
        import cv2  # noqa: F401
    except ImportError as exc:
        return {"rows": [], "note": f"skipped: {exc} (films need PyAV and OpenCV)"}
    from model import Colorizer, PredictorConfig
    from pipelines.video import VideoOptions, colorize_video

    width, height, frames = (64, 48, 8) if smoke else (1280, 720, 240)
    colorizer = Colorizer.from_pretrained(
        preset="test" if smoke else None, config=PredictorConfig(device=device, max_batch_size=16)
    )
    with tempfile.TemporaryDirectory(prefix="gpu-film-") as tmp:
        src, dst = Path(tmp) / "in.mp4", Path(tmp) / "out.mp4"
        _clip(src, width, height, frames)
        start = time.perf_counter()
        colorize_video(src, dst, colorizer, VideoOptions())
        seconds = time.perf_counter() - start
    row = {"clip": f"{frames} frames {width}x{height}", "seconds": seconds, "frames/s": frames / seconds}
    return {"rows": [row], "note": "temporal mode (shot styles + flow-guided chroma filter), the default"}


def _clip(path: Path, width: int, height: int, frames: int) -> None:
    import av

    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            grey = (128 + 100 * np.sin((x + 4 * i) / 40) * np.cos(y / 30)).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(np.repeat(grey[..., None], 3, axis=2), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


PARTS = {"network": network, "bulk": bulk, "api": api, "film": film}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=sorted(PARTS))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    result = PARTS[args.part](args.device, args.smoke)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
