"""Load test of the colorization API: a bounded, closed-loop async httpx client sweeping concurrency, beside a
direct in-process call of the same predictor on the same image (the serving overhead).

Every request posts the same synthetic greyscale JPEG and asks for a JPEG back. For each concurrency level it
reports throughput, p50/p95/p99 latency and errors by status; the direct call does exactly the service's work
(``Colorizer.colorize_encoded``: decode, network, compose, encode) in this process with the model replica's
thread count.

CPU (starts a local Ray and deploys deploy/serve.yaml with the given model on a free port):
    python -m benchmarks.serve_load --preset tiny --size 256 --concurrency 1,2,4,8,16,32,64 \
        --out benchmarks/results/serve-cpu.md
GPU host (deploy/serve.gpu.yaml: 8+ ingress replicas on the CPUs, one model replica on the GPU):
    python -m benchmarks.serve_load --config deploy/serve.gpu.yaml --preset paper --device cuda \
        --size 512 --concurrency 1,8,16,32,64 --requests 4000 --out benchmarks/results/serve-gpu.md
Against a server that is already running (its model options must match --preset/--weights for the baseline):
    python -m benchmarks.serve_load --url http://127.0.0.1:8000 --preset tiny
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import platform
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image


def synthetic_jpeg(size: int, seed: int = 0) -> bytes:
    """A greyscale 'photo' with structure and grain (JPEG quality 90)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    img = 128 + 70 * np.sin(x / 19.0) * np.cos(y / 27.0) + 30 * np.sin((x + y) / 53.0)
    img += rng.normal(0, 6, (size, size))
    buf = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "L").save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


@dataclass
class Level:
    concurrency: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    batch_sizes: list[int] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=dict)  # Server-Timing of successful answers, ms

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def errors(self) -> int:
        return sum(self.statuses.values()) - self.ok


async def run_level(url: str, body: bytes, concurrency: int, requests: int, headers: dict[str, str]) -> Level:
    """``concurrency`` workers each send one request at a time until ``requests`` have been sent."""
    import httpx

    level = Level(concurrency)
    remaining = requests
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            start = time.perf_counter()
            try:
                r = await client.post(url, content=body, headers=headers)
                _record(level, r.status_code, time.perf_counter() - start, r.headers)
            except httpx.HTTPError:
                level.statuses[0] += 1  # connection-level failure

    async with httpx.AsyncClient(timeout=120.0, limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        level.seconds = time.perf_counter() - start
    return level


class Direct:
    """The model replica's work in this process, one image at a time: the whole pixel path, bytes to bytes."""

    def __init__(self, args: argparse.Namespace, body: bytes, threads: int) -> None:
        import torch

        from model import Colorizer, PredictorConfig

        torch.set_num_threads(threads)
        self.body = body
        self.cuda = args.device.startswith("cuda")
        config = PredictorConfig(device=args.device)
        self.colorizer = Colorizer.from_pretrained(args.weights, preset=args.preset, config=config)
        for _ in range(5):  # warm-up
            self.once()
        self.stages: dict[str, list[float]] = {}

    def once(self) -> float:
        from model import EncodeRequest

        start = time.perf_counter()
        (result,) = self.colorizer.colorize_encoded([EncodeRequest(self.body, format="jpeg", quality=90)])
        assert not isinstance(result, Exception), result
        end = time.perf_counter()
        if hasattr(self, "stages"):
            self.stages.setdefault("pixel path", []).append((end - start) * 1e3)
        return end - start


def paired(url: str, body: bytes, headers: dict[str, str], direct: Direct, n: int) -> tuple[list[float], Level]:
    """Concurrency 1, interleaved: a direct call, then one request, ``n`` times, so both see the same background
    load on a shared machine. Returns the direct latencies and the served level."""
    import httpx

    level = Level(1)
    times: list[float] = []
    with httpx.Client(timeout=120.0) as client:
        start = time.perf_counter()
        for _ in range(n):
            times.append(direct.once())
            t0 = time.perf_counter()
            r = client.post(url, content=body, headers=headers)
            _record(level, r.status_code, time.perf_counter() - t0, r.headers)
        level.seconds = time.perf_counter() - start - sum(times)
    return times, level


def _record(level: Level, status: int, elapsed: float, headers: Any) -> None:
    level.statuses[status] += 1
    if status != 200:
        return
    level.latencies.append(elapsed)
    level.batch_sizes.append(int(headers.get("x-batch-size", "1")))
    for item in headers.get("server-timing", "").split(","):
        name, _, dur = item.strip().partition(";dur=")
        if dur:
            level.stages.setdefault(name, []).append(float(dur))


def start_server(args: argparse.Namespace) -> str:
    import ray

    from services.launch import deploy, load_config, with_http

    config = with_http(load_config(args.config), "127.0.0.1", args.port or _free_port())
    app = config.applications[0]
    app_args = dict(app.args or {})
    model = {**dict(app_args.get("model") or {}), "device": args.device}
    model.update({k: v for k, v in {"preset": args.preset, "weights": args.weights}.items() if v})
    app_args["model"] = model
    deployments = []
    for d in app.deployments:
        batching = {"max_batch_size": args.batch_size, "batch_wait_timeout_s": args.batch_wait}
        batching = {k: v for k, v in batching.items() if v is not None}
        if d.name == "ColorizerModel" and batching:
            d = d.model_copy(update={"user_config": {**(d.user_config or {}), **batching}})
        deployments.append(d)
    app = app.model_copy(update={"args": app_args, "deployments": deployments})
    config = config.model_copy(update={"applications": [app]})
    if args.throughput_optimized:  # Ray Serve's documented fast path (gRPC between replicas, ...): set it
        os.environ["RAY_SERVE_THROUGHPUT_OPTIMIZED"] = "1"  # before Ray starts, so every Serve actor sees it
    if getattr(args, "haproxy", False):  # HAProxy instead of Serve's Python proxy as the HTTP ingress
        os.environ["RAY_SERVE_ENABLE_HA_PROXY"] = "1"
    ray.init(include_dashboard=False, log_to_driver=False, namespace="serve")
    deploy(config)
    return f"http://127.0.0.1:{config.http_options.port}"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def report(
    args: argparse.Namespace,
    card: dict[str, Any],
    direct: list[float],
    stages: dict[str, list[float]],
    levels: list[Level],
) -> str:
    d50 = statistics.median(direct) * 1e3
    lines = [
        f"Machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; model {card['name']} on {card['info']['device']}, "
        f"{card['info'].get('torch_threads')} torch thread(s) per model replica",
        f"Image: {args.size}x{args.size} greyscale JPEG ({args.image_bytes:,} bytes) in, JPEG out",
        "",
        f"Direct in-process call (decode + network + compose + encode), interleaved with the concurrency-1 "
        f"requests ({len(direct)} pairs): p50 {d50:.1f} ms, p95 {percentile(direct, 95) * 1e3:.1f} ms",
        "",
        "| concurrency | requests | images/s | p50 ms | p95 ms | p99 ms | p50 − direct p50 ms | mean batch | errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for lv in levels:
        p50 = percentile(lv.latencies, 50) * 1e3
        errors = ", ".join(f"{s or 'conn'}: {c}" for s, c in sorted(lv.statuses.items()) if s != 200) or "0"
        batch = statistics.fmean(lv.batch_sizes) if lv.batch_sizes else float("nan")
        lines.append(
            f"| {lv.concurrency} | {sum(lv.statuses.values())} | {lv.ok / lv.seconds:.1f} | {p50:.1f} | "
            f"{percentile(lv.latencies, 95) * 1e3:.1f} | {percentile(lv.latencies, 99) * 1e3:.1f} | "
            f"{p50 - d50:+.1f} | {batch:.2f} | {errors} |"
        )
    first = levels[0]
    if first.concurrency == 1 and len(first.latencies) == len(direct):
        diffs = [(s - d) * 1e3 for s, d in zip(first.latencies, direct, strict=True)]
        lines += [
            "",
            "Serving overhead at concurrency 1, paired (served − direct of the same round): "
            f"median {statistics.median(diffs):.1f} ms, p25 {percentile(diffs, 25):.1f} ms, "
            f"p75 {percentile(diffs, 75):.1f} ms.",
        ]
    if first.stages:
        served = ", ".join(f"{k} {statistics.median(v):.1f}" for k, v in first.stages.items())
        own = ", ".join(f"{k} {statistics.median(v):.1f}" for k, v in stages.items())
        lines += [
            "",
            f"Stage medians at concurrency {first.concurrency} (ms). Served (Server-Timing): {served}. "
            f"Direct: {own}. 'model' is the ingress's wait for the model deployment (handle hop + batch wait + "
            "network); 'encode' includes recombining chroma with L*; the rest of the served p50 is the HTTP proxy "
            "and the client.",
        ]
    return "\n".join(lines)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="Serve config to deploy (default: deploy/serve.yaml)")
    parser.add_argument("--url", help="benchmark a running server instead of starting one")
    parser.add_argument("--port", type=int, help="port for the server this benchmark starts (default: a free one)")
    parser.add_argument("--preset", help="untrained network of this preset (default: the config's model)")
    parser.add_argument("--weights", help="checkpoint (default: the config's model)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto (server and direct baseline)")
    parser.add_argument("--size", type=int, default=256, help="square image side in pixels (default 256)")
    parser.add_argument("--concurrency", default="1,2,4,8,16,32,64", help="comma-separated levels")
    parser.add_argument("--requests", type=int, default=0, help="requests per level (default: max(40, 8 x c))")
    parser.add_argument(
        "--direct-runs", type=int, default=60, help="interleaved direct/served pairs at concurrency 1 (default 60)"
    )
    parser.add_argument("--api-key", default=os.environ.get("COLORIZE_API_KEY"), help="bearer key if needed")
    parser.add_argument("--batch-size", type=int, help="override the config's max_batch_size")
    parser.add_argument("--batch-wait", type=float, help="override the config's batch_wait_timeout_s")
    parser.add_argument(
        "--throughput-optimized", action="store_true", help="start Ray with RAY_SERVE_THROUGHPUT_OPTIMIZED=1"
    )
    parser.add_argument(
        "--haproxy", action="store_true", help="start Ray with RAY_SERVE_ENABLE_HA_PROXY=1 (HAProxy ingress)"
    )
    parser.add_argument("--out", help="also write the markdown table to this file")
    args = parser.parse_args()
    if args.config is None:
        from services.launch import DEFAULT_CONFIG

        args.config = DEFAULT_CONFIG
    return args


def main() -> None:
    args = _parse_args()
    import httpx

    body = synthetic_jpeg(args.size)
    args.image_bytes = len(body)
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    started = args.url is None
    base = start_server(args) if started else args.url.rstrip("/")
    try:
        card = httpx.get(f"{base}/v1/model", headers=headers, timeout=60).json()
        url = f"{base}/v1/colorize?format=jpeg"
        asyncio.run(run_level(url, body, 4, 20, headers))  # warm-up: connections, first batches
        # The baseline uses the model replica's thread count and runs while the server idles.
        direct = Direct(args, body, int(card["info"].get("torch_threads") or 1))
        direct_times, first = paired(url, body, headers, direct, args.direct_runs)
        levels = []
        for c in [int(x) for x in args.concurrency.split(",")]:
            n = args.requests or max(40, 8 * c)
            level = first if c == 1 else asyncio.run(run_level(url, body, c, n, headers))
            levels.append(level)
            print(
                f"c={c}: {level.ok / level.seconds:.1f} images/s, p50 {percentile(level.latencies, 50) * 1e3:.1f} ms, "
                f"errors {level.errors}",
                flush=True,
            )
    finally:
        if started:
            import ray
            from ray import serve

            serve.shutdown()
            ray.shutdown()
    table = report(args, card, direct_times, direct.stages, levels)
    print(table)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
