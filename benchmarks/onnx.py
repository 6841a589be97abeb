"""The network on this CPU: PyTorch eager (default threads, then 1 and 2 threads) against ONNX Runtime (all
graph optimisations; 1 and 2 intra-op threads, the latter also without spin-waiting; and with optimisations
off, to show what they bring).

Images per second of the network alone, one image per call (the CPU default of the bulk job and the API), on
decoded L* planes of synthetic greyscale JPEGs. Modes run interleaved, in a different order each round, and
each figure is the median over rounds, so that load from other jobs on a shared machine falls on every mode
alike: compare the ratios, which are measured within one run.

    python -m benchmarks.onnx [--weights W | --preset P] [--rounds 7] [--n 3] [--json benchmarks/results/onnx.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.predictor import synthetic_jpegs
from model import Colorizer, decode_image

SIZES = [(512, 512), (1024, 768)]
Run = Callable[[np.ndarray], object]


def torch_mode(network: torch.nn.Module, threads: int) -> Run:
    def run(x: np.ndarray) -> object:
        torch.set_num_threads(threads)
        with torch.inference_mode():
            return network(torch.from_numpy(x))

    return run


def ort_mode(path: Path, threads: int, optimise: bool = True, spin: bool = True) -> Run:
    import onnxruntime as ort

    from model.onnx_backend import session_options

    options = session_options(threads)
    if not optimise:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if not spin:  # idle intra-op threads sleep instead of busy-waiting for the next parallel region
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(x: np.ndarray) -> object:
        return session.run(["ab", "logits"], {"lightness": x})

    return run


def modes(colorizer: Colorizer, graph: Path) -> dict[str, Run]:
    default = torch.get_num_threads()
    network = colorizer.network.eval()
    return {
        f"torch eager (default: {default} threads)": torch_mode(network, default),
        "torch eager, 1 thread": torch_mode(network, 1),
        "torch eager, 2 threads": torch_mode(network, 2),
        "onnxruntime, 1 thread": ort_mode(graph, 1),
        "onnxruntime, 2 threads": ort_mode(graph, 2),
        "onnxruntime, 2 threads, no spin-waiting": ort_mode(graph, 2, spin=False),
        "onnxruntime, 1 thread, graph optimisations off": ort_mode(graph, 1, optimise=False),
    }


def measure(runs: dict[str, Run], planes: list[np.ndarray], rounds: int) -> dict[str, float]:
    """Median images/s of each mode over ``rounds`` interleaved rounds of ``len(planes)`` calls each."""
    inputs = [(p / 100.0).astype(np.float32)[None, None] for p in planes]
    for run in runs.values():
        run(inputs[0])  # warm-up: allocations, thread pools, kernel choice
    rates: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            for x in inputs:
                runs[name](x)
            rates[name].append(len(inputs) / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in rates.items()}


def table(results: dict[str, dict[str, float]]) -> str:
    sizes = list(results)
    names = list(results[sizes[0]])
    baseline = names[0]
    head = "| mode | " + " | ".join(f"{s} images/s | ratio" for s in sizes) + " |"
    lines = [head, "|---|" + "---:|---:|" * len(sizes)]
    for name in names:
        cells = [f"{results[s][name]:.2f} | {results[s][name] / results[s][baseline]:.2f}x" for s in sizes]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    best = []
    for s in sizes:
        torch_best = max(v for k, v in results[s].items() if k.startswith("torch"))
        ort_best = max(v for k, v in results[s].items() if k.startswith("onnxruntime") and "off" not in k)
        best.append(f"{s}: {ort_best / torch_best:.2f}x")
    lines.append("")
    lines.append("best onnxruntime / best torch: " + ", ".join(best))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights")
    parser.add_argument("--preset", help="untrained preset instead of the shipped checkpoint")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--n", type=int, default=3, help="images per mode and round")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    import onnxruntime

    from model.export import export_onnx

    colorizer = Colorizer.from_pretrained(args.weights, preset=args.preset, config=None)
    graph = Path(tempfile.mkdtemp()) / "model.onnx"
    export_onnx(colorizer.network, graph, card=colorizer.card)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; torch "
        f"{torch.__version__}, onnxruntime {onnxruntime.__version__}; model: {colorizer.model_name}; "
        f"batch 1, {args.n} images x {args.rounds} rounds per mode and size"
    )
    runs = modes(colorizer, graph)
    results: dict[str, dict[str, float]] = {}
    for width, height in SIZES:
        planes = [decode_image(d).lightness for d in synthetic_jpegs(width, height, args.n)]
        results[f"{width}x{height}"] = measure(runs, planes, args.rounds)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print(table(results))
    if args.json:
        meta: dict[str, Any] = {"model": colorizer.model_name, "rounds": args.rounds, "n": args.n}
        args.json.write_text(json.dumps({"images_per_s": results, **meta}, indent=2) + "\n")


if __name__ == "__main__":
    main()
