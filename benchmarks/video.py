"""Film colorization: flicker, fidelity, throughput and memory. Prints markdown tables.

1. **Films** (paths as arguments): each is colorized per frame (``--temporal off``) and with temporal
   consistency, and its frames once more as still images through the same predictor (``colorize_batch``, no
   video I/O). Reports the warping error (Lai et al. 2018) of both outputs and of the greyscale input itself
   (its own grain and exposure flicker, which every output keeps with the input's L*), the same measure over
   a*b* only, wall and CPU times and their ratio to the stills, and the process's resident memory sampled
   while the film runs (at each quarter of the frames, and the peak).
2. **Ground truth**: a colour clip (pans across photos from a training pack given with ``--train-pack``, or a
   synthetic scene without it), made greyscale, colorized both ways: PSNR against the colour original and
   warping error.

3. **Throughput**: the first ``--speed-frames`` frames of each film, stills / per-frame / temporal, each run
   twice in the order ABCCBA so that a drifting machine load biases no mode.

    python -m benchmarks.video FILM... [--train-pack DIR] [--weights W | --preset P] [--frames-dir DIR]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import torch
from PIL import Image

from model import Colorizer, DecodedImage, PredictorConfig
from model.color import lab_to_rgb, srgb8_to_lightness
from model.metrics import psnr  # identical frames count as 100 dB, as in every other table
from pipelines.video import VideoOptions, colorize_video
from pipelines.video.io import read_frames
from pipelines.video.metrics import video_warping_error


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class MemorySampler:
    """Resident memory every ``interval`` seconds, with how many frames were done at that moment."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.frames = 0
        self.samples: list[tuple[float, int, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.perf_counter()
        while not self._stop.is_set():
            self.samples.append((time.perf_counter() - start, self.frames, rss_mib()))
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((float("nan"), self.frames, rss_mib()))

    def at_quarters(self, total: int) -> list[float]:
        """Largest RSS seen up to 25/50/75/100% of the colorized frames."""
        out = []
        for q in (0.25, 0.5, 0.75, 1.0):
            seen = [rss for _, done, rss in self.samples if done <= q * total]
            out.append(max(seen) if seen else float("nan"))
        return out


def run_film(src: Path, dst: Path, colorizer: Colorizer, options: VideoOptions) -> tuple[dict[str, Any], Any]:
    """Colorize a film, sampling memory; the summary gains ``cpu_seconds`` (all threads of this process)."""
    with MemorySampler() as memory:

        def count(_rgb: np.ndarray, _frame: Any) -> None:
            memory.frames += 1

        cpu = time.process_time()
        summary = colorize_video(src, dst, colorizer, options, on_frame=count)
        summary["cpu_seconds"] = time.process_time() - cpu
    return summary, memory


def stills_seconds(src: Path, colorizer: Colorizer, batch: int) -> tuple[float, float]:
    """Wall and CPU seconds to colorize the film's frames as still images (``colorize_batch``, same batch
    size; decoding the film is not counted)."""
    wall = cpu = 0.0
    planes: list[np.ndarray] = []

    def flush() -> tuple[float, float]:
        images = [DecodedImage(lightness=p, alpha=None, format=None, mode="L") for p in planes]
        t0, c0 = time.perf_counter(), time.process_time()
        colorizer.colorize_batch(images)
        planes.clear()
        return time.perf_counter() - t0, time.process_time() - c0

    for frame in read_frames(src):
        planes.append(frame.lightness)
        if len(planes) == batch:
            w, c = flush()
            wall, cpu = wall + w, cpu + c
    if planes:
        w, c = flush()
        wall, cpu = wall + w, cpu + c
    return wall, cpu


def contact_sheet(
    paths: dict[str, Path], indices: list[int], out: Path, width: int = 320, first: list[np.ndarray] | None = None
) -> None:
    """One row per film (``first``: frames to show above them, e.g. the colour ground truth)."""
    rows = []
    if first:
        rows.append(np.concatenate([cv2.resize(f, (width, round(width * f.shape[0] / f.shape[1]))) for f in first], 1))
    for path in paths.values():
        keep = {}
        with av.open(str(path)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i in indices:
                    keep[i] = frame.to_ndarray(format="rgb24")
        tiles = [cv2.resize(keep[i], (width, round(width * keep[i].shape[0] / keep[i].shape[1]))) for i in keep]
        rows.append(np.concatenate(tiles, axis=1))
    Image.fromarray(np.concatenate(rows, axis=0)).save(out)


# ------------------------------------------------------------------------------------ ground-truth clip
def _photos(pack: Path | None, n: int, size: int) -> list[np.ndarray]:
    if pack is None:  # synthetic: sky, ground, a few coloured discs
        rng = np.random.default_rng(0)
        out = []
        for k in range(n):
            img = np.zeros((size, size, 3), np.float32)
            img[: size // 2] = rng.uniform(0.2, 0.9, 3)
            img[size // 2 :] = rng.uniform(0.1, 0.7, 3)
            y, x = np.mgrid[0:size, 0:size]
            for _ in range(4):
                cx, cy = rng.uniform(0, size, 2)
                r = rng.uniform(0.05, 0.2) * size
                img[(x - cx) ** 2 + (y - cy) ** 2 < r**2] = rng.uniform(0, 1, 3)
            img += 0.04 * np.sin(x / (5 + k))[..., None]
            out.append((np.clip(img, 0, 1) * 255).astype(np.uint8))
        return out
    with open(pack / "manifest.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "val"]
    picks = np.random.default_rng(7).choice(len(rows), n, replace=False)
    photos = []
    for i in picks:
        image = Image.open(pack / rows[i]["path"]).convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
        photos.append(np.asarray(image))
    return photos


def truth_frames(pack: Path | None, shots: int, per_shot: int, w: int, h: int) -> Iterator[np.ndarray]:
    """Colour frames: each shot pans and slowly zooms across one photo; hard cuts between shots."""
    for k, photo in enumerate(_photos(pack, shots, int(max(w, h) * 1.5))):
        size = photo.shape[0]
        for t in range(per_shot):
            s = t / max(per_shot - 1, 1)
            zoom = 1.0 + 0.15 * s
            cw, ch = w * 1.2 / zoom, h * 1.2 / zoom
            x0 = (size - cw) * (0.1 + 0.8 * s if k % 2 == 0 else 0.9 - 0.8 * s)
            y0 = (size - ch) * (0.3 + 0.3 * s)
            m = np.array([[w / cw, 0, -x0 * w / cw], [0, h / ch, -y0 * h / ch]], dtype=np.float32)
            yield cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def write_grey_clip(frames: Iterator[np.ndarray], path: Path, fps: int = 24) -> int:
    n = 0
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        first = next(frames)
        stream.height, stream.width = first.shape[:2]
        stream.pix_fmt, stream.options = "yuv420p", {"crf": "10"}
        for rgb in [first, *frames]:
            lum = srgb8_to_lightness(rgb)  # the grey picture with the colour frame's own L*
            grey = np.clip(np.round(_lightness_to_srgb8(lum)), 0, 255).astype(np.uint8)
            picture = av.VideoFrame.from_ndarray(np.repeat(grey[..., None], 3, -1), format="rgb24")
            picture.pts, picture.time_base = n, Fraction(1, fps)
            out.mux(stream.encode(picture))
            n += 1
        out.mux(stream.encode(None))
    return n


def _lightness_to_srgb8(lum: np.ndarray) -> np.ndarray:
    lab = torch.from_numpy(np.stack([lum, np.zeros_like(lum), np.zeros_like(lum)]).astype(np.float32))
    return lab_to_rgb(lab)[0].numpy() * 255.0


def mean_psnr(path: Path, truth: Callable[[], Iterator[np.ndarray]]) -> float:
    scores = []
    with av.open(str(path)) as container:
        for frame, gt in zip(container.decode(video=0), truth(), strict=True):
            scores.append(psnr(frame.to_ndarray(format="rgb24"), gt))
    return float(np.mean(scores))


# ------------------------------------------------------------------------------------------------- main
VARIANTS = {
    "per-frame": VideoOptions(temporal=False),
    "temporal": VideoOptions(),
}
ABLATIONS = {
    "shot style only": VideoOptions(filter_strength=0.0),
    "filter only": VideoOptions(shot_style=False),
}


def films(args: argparse.Namespace, colorizer: Colorizer, work: Path) -> None:
    print("\n### Films\n")
    print(
        "| film | frames | shots | output | warping error x1e3 (RGB) | chroma warping error (ΔE²ab) | wall s "
        "| CPU s | wall vs stills | CPU vs stills |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    mem_rows = []
    for film in args.films:
        film = Path(film)
        stills, stills_cpu = stills_seconds(film, colorizer, args.batch)
        outs, summaries, memories = {}, {}, {}
        for name, options in VARIANTS.items():
            dst = work / f"{film.stem}-{name}.mp4"
            summaries[name], memories[name] = run_film(film, dst, colorizer, options.replace(batch_size=args.batch))
            outs[name] = dst
        cuts = summaries["temporal"]["cuts"]
        meter = video_warping_error(outs, film, cuts=cuts, include_source=True)
        errors, chroma = meter.result(), meter.chroma_result()
        n = summaries["temporal"]["frames"]
        print(f"| {film.name} | {n} | {len(cuts)} | greyscale input | {errors['source'] * 1e3:.3f} | 0 | | | | |")
        print(f"| | | | stills (no video I/O) | - | - | {stills:.1f} | {stills_cpu:.1f} | 1.00 | 1.00 |")
        for name in VARIANTS:
            err, sec, cpu = errors[name], summaries[name]["seconds"], summaries[name]["cpu_seconds"]
            print(
                f"| | | | {name} | {err * 1e3:.3f} | {chroma[name]:.3f} | {sec:.1f} | {cpu:.1f} "
                f"| {sec / stills:.2f} | {cpu / stills_cpu:.2f} |"
            )
        drop = 1 - errors["temporal"] / errors["per-frame"]
        drop_ab = 1 - chroma["temporal"] / max(chroma["per-frame"], 1e-12)
        print(f"| | | | **temporal vs per-frame** | **{drop:.0%} lower** | **{drop_ab:.0%} lower** | | | | |")
        for name, memory in memories.items():
            mem_rows.append((film.name, name, memory.at_quarters(n), max(r for *_, r in memory.samples)))
        if args.frames_dir:
            args.frames_dir.mkdir(parents=True, exist_ok=True)
            picks = [int(n * q) for q in (0.1, 0.3, 0.5, 0.7, 0.9)]
            contact_sheet({"in": film, **outs}, picks, args.frames_dir / f"{film.stem}.png")
    print("\n### Resident memory (MiB) while colorizing, largest so far at each quarter of the film\n")
    print("| film | mode | 25% | 50% | 75% | 100% | peak |")
    print("|---|---|---|---|---|---|---|")
    for name, mode, quarters, peak in mem_rows:
        print(f"| {name} | {mode} | " + " | ".join(f"{q:.0f}" for q in quarters) + f" | {peak:.0f} |")


def ground_truth(args: argparse.Namespace, colorizer: Colorizer, work: Path) -> None:
    w, h, shots, per_shot = 320, 240, args.gt_shots, args.gt_frames

    def truth() -> Iterator[np.ndarray]:
        return truth_frames(args.train_pack, shots, per_shot, w, h)

    src = work / "truth-grey.mp4"
    n = write_grey_clip(truth(), src)
    source = f"{args.train_pack.name} photos" if args.train_pack else "synthetic"
    print(f"\n### Ground truth: {n} frames, {shots} shots, {w}x{h}, {source}\n")
    print("| output | PSNR dB | warping error x1e3 (RGB) | chroma warping error (ΔE²ab) |")
    print("|---|---|---|---|")
    variants = {**VARIANTS, **(ABLATIONS if args.ablations else {})}
    outs = {}
    for name, options in variants.items():
        outs[name] = work / f"truth-{name.replace(' ', '-')}.mp4"
        colorize_video(src, outs[name], colorizer, options.replace(batch_size=args.batch))
    cuts = [k * per_shot for k in range(shots)]
    meter = video_warping_error(outs, src, cuts=cuts, include_source=True)
    errors, chroma = meter.result(), meter.chroma_result()
    scores = {name: mean_psnr(path, truth) for name, path in outs.items()}
    print(f"| greyscale input | {mean_psnr(src, truth):.2f} | {errors['source'] * 1e3:.3f} | 0 |")
    for name in variants:
        print(f"| {name} | {scores[name]:.2f} | {errors[name] * 1e3:.3f} | {chroma[name]:.3f} |")
    print(
        f"\ntemporal vs per-frame: PSNR {scores['temporal'] - scores['per-frame']:+.2f} dB, warping error "
        f"{1 - errors['temporal'] / errors['per-frame']:.0%} lower (RGB), "
        f"{1 - chroma['temporal'] / max(chroma['per-frame'], 1e-12):.0%} lower (a*b*)"
    )
    if args.frames_dir:
        args.frames_dir.mkdir(parents=True, exist_ok=True)
        picks = [5, per_shot + 5, 2 * per_shot + 20]
        colour = [f for i, f in enumerate(truth()) if i in picks]
        contact_sheet({"in": src, **outs}, picks, args.frames_dir / "truth.png", first=colour)


def film_prefix(src: Path, dst: Path, frames: int, repeat: int = 1) -> Path:
    """The first ``frames`` frames (0: all) of ``src``, played ``repeat`` times back to back, re-encoded
    near-losslessly (video only)."""
    with av.open(str(dst), "w") as out:
        stream = None
        i = 0
        for _ in range(repeat):
            with av.open(str(src)) as inp:
                vin = inp.streams.video[0]
                rate = Fraction(vin.average_rate or 25)
                if stream is None:
                    stream = out.add_stream("libx264", rate=rate)
                    stream.width, stream.height, stream.pix_fmt = vin.width, vin.height, "yuv420p"
                    stream.options = {"crf": "12", "preset": "veryfast"}
                for n, frame in enumerate(inp.decode(vin)):
                    if frames and n == frames:
                        break
                    picture = frame.reformat(format="yuv420p")
                    picture.pts, picture.time_base = i, 1 / rate
                    out.mux(stream.encode(picture))
                    i += 1
        if stream is not None:
            out.mux(stream.encode(None))
    return dst


def long_film(args: argparse.Namespace, colorizer: Colorizer, work: Path) -> None:
    """Memory over a film ``--long-repeat`` times as long as each given one (temporal mode, this process)."""
    print(f"\n### Memory over a long film: each film {args.long_repeat}x back to back, temporal on\n")
    print("| film | frames | " + " | ".join(f"{t}0%" for t in range(1, 11)) + " | growth 10%→100% |")
    print("|---|---|" + "---|" * 11)
    for film in args.films:
        clip = film_prefix(Path(film), work / f"{Path(film).stem}-long.mp4", 0, repeat=args.long_repeat)
        summary, memory = run_film(
            clip, work / "long.mp4", colorizer, VARIANTS["temporal"].replace(batch_size=args.batch)
        )
        n = summary["frames"]
        tenths = []
        for t in range(1, 11):
            seen = [rss for _, done, rss in memory.samples if done <= t * n / 10]
            tenths.append(max(seen) if seen else float("nan"))
        print(
            f"| {Path(film).name} | {n} | "
            + " | ".join(f"{m:.0f}" for m in tenths)
            + f" | {tenths[-1] - tenths[0]:+.0f} MiB |"
        )


def speed(args: argparse.Namespace, colorizer: Colorizer, work: Path) -> None:
    """Throughput against stills, run in the order stills, per-frame, temporal, temporal, per-frame, stills
    so that a machine whose load drifts during the run biases no mode; the mean of both runs of each."""
    what = f"first {args.speed_frames} frames" if args.speed_frames else "whole films"
    print(f"\n### Throughput, {what}, each mode run twice (ABCCBA)\n")
    print("| film | mode | wall s | CPU s | frames/s | wall vs stills | CPU vs stills |")
    print("|---|---|---|---|---|---|---|")
    for film in args.films:
        clip = Path(film)
        if args.speed_frames:
            clip = film_prefix(clip, work / f"{clip.stem}-prefix.mp4", args.speed_frames)
        runs: dict[str, list[tuple[float, float]]] = {"stills": [], "per-frame": [], "temporal": []}
        frames = args.speed_frames
        for mode in ["stills", "per-frame", "temporal", "temporal", "per-frame", "stills"]:
            if mode == "stills":
                runs[mode].append(stills_seconds(clip, colorizer, args.batch))
            else:
                summary, _ = run_film(
                    clip, work / "speed.mp4", colorizer, VARIANTS[mode].replace(batch_size=args.batch)
                )
                runs[mode].append((summary["seconds"], summary["cpu_seconds"]))
                frames = summary["frames"]
        wall0, cpu0 = (float(np.mean([r[k] for r in runs["stills"]])) for k in (0, 1))
        for mode, values in runs.items():
            wall, cpu = (float(np.mean([r[k] for r in values])) for k in (0, 1))
            print(
                f"| {Path(film).name} | {mode} | {wall:.1f} | {cpu:.1f} | {frames / wall:.2f} "
                f"| {wall / wall0:.2f} | {cpu / cpu0:.2f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("films", nargs="*", type=Path, help="black-and-white films to colorize")
    parser.add_argument("--train-pack", type=Path, help="folder with manifest.csv: photos for the ground-truth clip")
    parser.add_argument("--weights", help="checkpoint (default: the shipped one, else an untrained network)")
    parser.add_argument("--preset", help="untrained network of this preset")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--gt-shots", type=int, default=6)
    parser.add_argument("--gt-frames", type=int, default=36, help="frames per ground-truth shot")
    parser.add_argument("--ablations", action="store_true", help="also shot style only / filter only")
    parser.add_argument("--frames-dir", type=Path, help="save contact sheets of output frames here")
    parser.add_argument(
        "--speed-frames",
        type=int,
        default=150,
        help="frames per film for the throughput runs (0: the whole film as it is)",
    )
    parser.add_argument("--long-repeat", type=int, default=4, help="the long film: each film this many times")
    parser.add_argument(
        "--sections",
        default="films,truth,speed",
        help="comma-separated: films, truth (ground truth), speed, long (memory over a long film)",
    )
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    colorizer = Colorizer.from_pretrained(
        args.weights, preset=args.preset, config=PredictorConfig(device=args.device, max_batch_size=args.batch)
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
        f"{torch.__version__} ({torch.get_num_threads()} threads), device {colorizer.device}; model "
        f"{colorizer.model_name} (trained: {colorizer.trained}); batch {args.batch}"
    )
    with tempfile.TemporaryDirectory(prefix="video-bench-") as tmp:
        if args.films and "films" in sections:
            films(args, colorizer, Path(tmp))
        if "truth" in sections:
            ground_truth(args, colorizer, Path(tmp))
        if args.films and "speed" in sections:
            speed(args, colorizer, Path(tmp))
        if args.films and "long" in sections:
            long_film(args, colorizer, Path(tmp))


if __name__ == "__main__":
    main()
