"""The GPU host's measurement script: every figure the project quotes for GPUs, in one run, one JSON + markdown.

Parts (each in its own process, with its own share of the time, so one that hangs or fails costs only itself):

- ``network``: the network alone (shipped checkpoint, ``small``, ``paper``; bf16 autocast, channels_last) on
  1024x768 L* planes already on the device, at the default working size and at full resolution, over a batch
  sweep: images/s.
- ``bulk``: the bulk job (Ray Data, local folder store) in steady state: shipped network and ``paper`` on
  1024x768 JPEGs, shipped network on 4000x3000 JPEGs; several actors per GPU.
- ``api``: the API (Ray Serve, 512x512 JPEGs) at concurrency 1 to 256: images/s, p50/p99, errors.
- ``film``: film frames/s through ``colorize_video`` on a synthetic clip (needs PyAV and OpenCV; skipped and
  said so where the host lacks them).

On the GPU host, with a Ray Data + Serve bundle for hosts without Ray (how to build it: BENCHMARKS.md, "The
pixel path", GPU)::

    source .gpu-bundle/activate.sh && PYTHONPATH=$PWD python3 -m benchmarks.gpu_run --minutes 4

Rehearse on any machine first (seconds, CPU, tiny inputs; the test suite runs this)::

    python -m benchmarks.gpu_run --smoke
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import gpu_parts

PARTS = ("network", "bulk", "api", "film")
SHARES = {"network": 0.2, "bulk": 0.45, "api": 0.25, "film": 0.1}  # of --minutes
RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "gpu": gpu,
        "platform": platform.platform(),
    }


def run_part(part: str, args: argparse.Namespace, timeout_s: float) -> dict[str, Any]:
    """One part in a child process; its JSON result, or what went wrong."""
    with tempfile.TemporaryDirectory(prefix=f"gpu-run-{part}-") as tmp:
        out = Path(tmp) / "result.json"
        command = [sys.executable, "-m", "benchmarks.gpu_parts", part, "--out", str(out), "--device", args.device]
        if args.smoke:
            command.append("--smoke")
        start = time.perf_counter()
        try:
            # Each part starts a Ray instance of its own, never joining one this process or a test session runs.
            env = {**os.environ, "RAY_ADDRESS": "local"}
            proc = subprocess.run(command, timeout=timeout_s, capture_output=True, text=True, env=env)
        except subprocess.TimeoutExpired:
            return {"status": "timeout", "seconds": round(time.perf_counter() - start, 1)}
        seconds = round(time.perf_counter() - start, 1)
        if proc.returncode != 0 or not out.exists():
            return {"status": "failed", "seconds": seconds, "stderr": proc.stderr[-3000:]}
        return {"status": "ok", "seconds": seconds, **json.loads(out.read_text())}


def markdown(record: dict[str, Any]) -> str:
    lines = [f"# GPU run ({'smoke, ' if record['smoke'] else ''}{record['date']})", ""]
    lines.append(f"Machine: {json.dumps(record['machine'])}; command: `{record['command']}`")
    for part, result in record["parts"].items():
        lines += ["", f"## {part}: {result['status']} ({result['seconds']} s)"]
        if result.get("note"):
            lines.append(result["note"])
        rows = result.get("rows") or []
        if rows:
            keys = list(rows[0])
            lines.append("| " + " | ".join(keys) + " |")
            lines.append("|" + "---|" * len(keys))
            lines += ["| " + " | ".join(gpu_parts.cell(r.get(k)) for k in keys) + " |" for r in rows]
        if result.get("stderr"):
            lines += ["```", result["stderr"][-1500:], "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=4.0, help="time for all parts together (default 4)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, from {', '.join(PARTS)}")
    parser.add_argument("--device", default=None, help="cuda (default when there is one) or cpu")
    parser.add_argument("--smoke", action="store_true", help="tiny inputs on any machine: checks every part runs")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for gpu_run[-smoke].json/.md")
    args = parser.parse_args(argv)
    if args.device is None:
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    parts = [p for p in args.parts.split(",") if p]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown parts {unknown}; choose from {PARTS}")
    record: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "smoke": args.smoke,
        "command": " ".join(["python -m benchmarks.gpu_run", *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine(),
        "parts": {},
    }
    for part in parts:
        timeout = max(60.0, args.minutes * 60 * SHARES[part]) if not args.smoke else 300.0
        result = run_part(part, args, timeout)
        record["parts"][part] = result
        print(f"{part}: {result['status']} in {result['seconds']} s", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    name = "gpu_run-smoke" if args.smoke else "gpu_run"
    (args.out / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    (args.out / f"{name}.md").write_text(markdown(record))
    print(markdown(record))
    return 0 if all(r["status"] == "ok" for r in record["parts"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
